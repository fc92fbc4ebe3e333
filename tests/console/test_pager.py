"""The findings list's pager: a bounded set of links that still reaches every page in a few steps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubeguard.api.console.finding_pages import PAGER_REACH, pager_numbers


@st.composite
def positions(draw) -> tuple[int, int]:
    pages = draw(st.integers(min_value=1, max_value=100_000))
    return draw(st.integers(min_value=1, max_value=pages)), pages


@given(positions())
def test_the_pager_links_the_ends_and_the_neighbourhood_and_marks_every_gap(position):
    current, pages = position
    numbers = pager_numbers(current, pages)
    linked = [n for n in numbers if n is not None]
    assert linked == sorted(set(linked)), "in order, each once"
    assert linked[0] == 1 and linked[-1] == pages and current in linked
    assert set(range(max(1, current - PAGER_REACH), min(pages, current + PAGER_REACH) + 1)) <= set(linked)
    assert len(numbers) <= 2 * PAGER_REACH + 6, "bounded whatever the number of pages"
    for before, after in zip(numbers, numbers[1:], strict=False):
        if before is None or after is None:
            assert (before, after) != (None, None), "two gaps never meet"
            continue
        assert after == before + 1, "a gap between two links is always marked"
    for index, number in enumerate(numbers):
        if number is None:
            assert numbers[index + 1] - numbers[index - 1] > 2, "a gap stands for at least two pages"


def test_a_short_list_links_every_page():
    assert pager_numbers(2, 5) == [1, 2, 3, 4, 5]
    assert pager_numbers(10, 20_000) == [1, None, 7, 8, 9, 10, 11, 12, 13, None, 20_000]
