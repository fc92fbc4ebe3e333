"""Policy:Kubernetes/NodePortServiceCreated (audit-trail pack)."""

from __future__ import annotations

import json

from detectors.extension_cases import node_port
from detectors.scanning import scan, types, with_pack

FINDING = "Policy:Kubernetes/NodePortServiceCreated"


def test_a_node_port_service_is_recorded_with_the_pack():
    [finding] = scan([node_port()], packs=["audit-trail"])
    assert finding["type"] == FINDING and "opening 80 on every node" in finding["description"]


def test_silent_by_default():
    assert types([node_port()]) == set()


def test_falco_fixtures(falco_dir):
    assert with_pack([json.loads((falco_dir / "create_nginx_service_nodeport.json").read_text())]) == {FINDING}
    assert with_pack([json.loads((falco_dir / "create_nginx_service_nonodeport.json").read_text())]) == set()
