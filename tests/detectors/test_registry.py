"""The registry: default detectors, opt-in packs, and the config that names them."""

from __future__ import annotations

import msgspec
import pytest

from kubeguard.config import DETECTION_PACKS, Settings
from kubeguard.detectors.registry import PACKS, default_detectors
from kubeguard.findings.types import CATALOGUE


def test_config_and_registry_agree_on_the_packs():
    assert set(DETECTION_PACKS) == set(PACKS)


def test_default_detectors_raise_no_pack_type_and_the_pack_adds_exactly_its_types():
    default = {t for d in default_detectors() for t in d.finding_types}
    with_pack = {t for d in default_detectors(["audit-trail"]) for t in d.finding_types}
    assert all(CATALOGUE[t].pack == "" for t in default)
    assert {t for t in with_pack - default} == {n for n, t in CATALOGUE.items() if t.pack == "audit-trail"}


def test_an_unknown_pack_is_refused_by_the_registry_and_the_config():
    with pytest.raises(ValueError, match="unknown detection pack 'nope'"):
        default_detectors(["nope"])
    with pytest.raises(msgspec.ValidationError, match="unknown detection pack 'nope'"):
        msgspec.convert({"detectors": {"packs": ["nope"]}}, Settings)
