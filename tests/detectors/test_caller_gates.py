"""Caller gates (``only_for``): a gated detector finds nothing while its gate is closed.

The engine and a split scan's mappers rely on that promise to skip the three detectors that want every
event; these tests hold each gated detector to it, and the engine's gated dispatch to what calling every
detector of the route finds.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeguard.audit.event import AuditEvent, UserInfo
from kubeguard.detectors.base import CALLER_GATES, DetectionContext, gate_open
from kubeguard.detectors.effect import outcome
from kubeguard.detectors.engine import Engine
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.intel.index import IntelIndex, ThreatList
from kubeguard.intel.ipset import IPSet

LAB_LOG = Path(__file__).resolve().parents[1] / "data" / "lab-scenario" / "audit.jsonl.gz"
LISTED_IP = "203.0.113.77"
INTEL = IntelIndex(lists=[ThreatList("firehol-level1", "malicious", IPSet.of(["203.0.113.0/24"]), ("FireHOL",))])


def lab_events() -> list[AuditEvent]:
    decoder = msgspec.json.Decoder(AuditEvent)
    with gzip.open(LAB_LOG, "rb") as handle:
        events = [decoder.decode(line) for line in handle if line.strip()]
    for event in events:
        event.cluster = "lab"
    return [e for e in events if e.stage == "ResponseComplete"]


LAB = lab_events()
GATED = [d for d in default_detectors() if getattr(d, "only_for", None) is not None]

users = st.builds(
    UserInfo,
    username=st.sampled_from(["system:anonymous", "alice", "system:serviceaccount:dev:default", "", "node-1"]),
    groups=st.lists(
        st.sampled_from(["system:unauthenticated", "system:authenticated", "system:masters", "system:nodes"]),
        max_size=3,
    ),
)
impersonated = st.none() | st.builds(
    UserInfo, username=st.sampled_from(["system:admin", "alice", ""]),
    groups=st.lists(st.sampled_from(["system:masters", "dev"]), max_size=2),
)
addresses = st.lists(st.sampled_from([LISTED_IP, "10.0.0.7", "127.0.0.1"]), min_size=0, max_size=2)


def test_every_gated_detector_names_a_known_gate_and_is_stateless() -> None:
    assert {d.only_for for d in GATED} == CALLER_GATES  # each gate guards a default detector
    assert all(getattr(d, "stateless", False) for d in GATED)


def test_an_unknown_gate_is_an_error_that_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="anonymous"):
        gate_open("sometimes", LAB[0], DetectionContext(state=MemoryState()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=len(LAB) - 1),
    user=users,
    target=impersonated,
    ips=addresses,
    intel=st.sampled_from([None, INTEL]),
)
def test_a_closed_gate_means_no_detection(
    index: int, user: UserInfo, target: UserInfo | None, ips: list[str], intel: IntelIndex | None
) -> None:
    event = msgspec.structs.replace(LAB[index], user=user, impersonatedUser=target, sourceIPs=ips)
    context = DetectionContext(state=MemoryState(), intel=intel)
    for detector in GATED:
        if not gate_open(detector.only_for, event, context):
            assert not list(detector.detect(event, context)), (detector.name, event)


def test_the_gates_guard_detections_the_lab_log_raises() -> None:
    """With each gate opened by hand the gated detectors do fire on the lab's events: the test above
    would see a detector that fires behind a closed gate."""
    context = DetectionContext(state=MemoryState(), intel=INTEL)
    fired = set()
    for event in LAB:
        for opened in _variants(event)[1:]:
            for detector in GATED:
                if list(detector.detect(opened, context)):
                    fired.add(detector.name)
    assert fired == {d.name for d in GATED}


def _variants(event: AuditEvent) -> list[AuditEvent]:
    return [
        event,
        msgspec.structs.replace(event, user=UserInfo(username="system:anonymous", groups=["system:unauthenticated"])),
        msgspec.structs.replace(event, user=UserInfo(username="guest", groups=["system:unauthenticated"])),
        msgspec.structs.replace(event, impersonatedUser=UserInfo(username="system:admin", groups=["system:masters"])),
        msgspec.structs.replace(event, sourceIPs=[LISTED_IP]),
    ]


@pytest.mark.parametrize("intel", [None, INTEL], ids=["no-intel", "intel"])
def test_gated_dispatch_finds_what_every_detector_finds(intel: IntelIndex | None) -> None:
    gated = Engine(default_detectors(), DetectionContext(state=MemoryState(), intel=intel))
    reference = Engine(default_detectors(), DetectionContext(state=MemoryState(), intel=intel))
    found = 0
    for event in (v for e in LAB for v in _variants(e)):
        ref = event.objectRef
        key = (event.verb, ref.resource if ref else "", ref.subresource if ref else "", outcome(event))
        expected = [d for detector in reference.route(*key) for d in detector.detect(event, reference.context)]
        assert gated.detect(event) == expected
        found += len(expected)
    assert found > len(LAB) // 10  # the variants make the gated detectors fire
