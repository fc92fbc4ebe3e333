"""Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace (audit-trail pack)."""

from __future__ import annotations

import json

from detectors.extension_cases import system_namespace_account
from detectors.scanning import scan, types, with_pack

FINDING = "Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace"


def test_a_person_creating_a_kube_system_account():
    [finding] = scan([system_namespace_account()], packs=["audit-trail"])
    assert finding["type"] == FINDING and "kube-system/helper" in finding["description"]


def test_silent_by_default():
    assert types([system_namespace_account()]) == set()


def test_falco_fixtures(falco_dir):
    for namespace in ("kube_system", "kube_public"):
        record = json.loads((falco_dir / f"create_serviceaccount_{namespace}_namespace.json").read_text())
        assert with_pack([record]) == {FINDING}
    assert with_pack([json.loads((falco_dir / "create_serviceaccount.json").read_text())]) == set()
