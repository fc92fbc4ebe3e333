"""Split a webhook batch that is larger than a NATS message may be into several EventLists.

NATS refuses messages above the server's ``max_payload`` (1 MiB unless configured), while the API server
may send EventLists of many megabytes. Batch boundaries do not change findings (every mode agrees whatever
the batching), so a large batch is cut between events into EventLists that each fit. The cut is a pure
function of the body and the limit: when the API server sends the batch again after a crash, the same
pieces with the same digests come out, and JetStream and the done marks recognise them.
"""

from __future__ import annotations

import msgspec

#: Room left in a message for the headers.
HEADER_ROOM = 4096

#: How pieces are written back: the same shape the batch came in.
_EVENT_LIST = (b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[', b",", b"]}")
_ARRAY = (b"[", b",", b"]")
_LINES = (b"", b"\n", b"\n")


class BatchTooLarge(ValueError):
    """One event alone is over the bus's message limit."""


class _Items(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


_array = msgspec.json.Decoder(list[msgspec.Raw])
_event_list = msgspec.json.Decoder(_Items)


def split_batch(body: bytes, max_payload: int, event_count: int) -> list[tuple[bytes, int]]:
    """``(body, events)`` pieces that each fit in ``max_payload``; the body itself when it fits."""
    limit = max_payload - HEADER_ROOM
    if len(body) <= limit:
        return [(body, event_count)]
    found = _items(body)
    if found is None:
        raise BatchTooLarge(
            f"the batch is {len(body)} bytes, over the bus's {limit}-byte message limit, and is not a list of "
            "events that could be split; raise max_payload in nats-server"
        )
    items, (head, separator, tail) = found
    frame = len(head) + len(tail)
    pieces: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    size = frame
    for item in items:
        if len(item) + frame > limit:
            raise BatchTooLarge(
                f"one event is {len(item)} bytes, over the bus's {limit}-byte message limit; "
                "raise max_payload in nats-server"
            )
        if current and size + len(item) + len(separator) > limit:
            pieces.append((head + separator.join(current) + tail, len(current)))
            current, size = [], frame
        current.append(item)
        size += len(item) + len(separator)
    if current:
        pieces.append((head + separator.join(current) + tail, len(current)))
    return pieces


def _items(body: bytes) -> tuple[list[bytes], tuple[bytes, bytes, bytes]] | None:
    """The raw items of an EventList, a JSON array or JSON Lines, and how to frame them; else None."""
    stripped = body.lstrip()
    try:
        if stripped.startswith(b"["):
            return [bytes(item) for item in _array.decode(body)], _ARRAY
        if stripped.startswith(b"{"):
            items = _event_list.decode(body).items
            if items is not None:
                return [bytes(item) for item in items], _EVENT_LIST
    except msgspec.DecodeError:
        pass
    lines = [line for line in body.splitlines() if line.strip()]
    return (lines, _LINES) if len(lines) > 1 else None
