"""Read back what sources put in the spool: the (auditID, stage) of every spooled event, in order."""

from __future__ import annotations

from sqlalchemy import select

from kubeguard.audit.decode import decode_bytes
from kubeguard.store import schema


def spooled_keys(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        spool, bodies = schema.spool, schema.spool_bodies
        query = select(bodies.c.body, spool.c.cluster).join(spool, spool.c.id == bodies.c.id).order_by(spool.c.id)
        rows = conn.execute(query).all()
    keys: list[tuple[str, str]] = []
    for body, cluster in rows:
        decoded = decode_bytes(bytes(body), cluster=cluster)
        assert not decoded.rejects, decoded.rejects
        keys.extend((event.auditID, event.stage) for event in decoded.events)
    return keys
