"""Persistence:Kubernetes/AdmissionWebhookConfigured (audit-trail pack)."""

from __future__ import annotations

from detectors.extension_cases import webhook
from detectors.scanning import scan, types, with_pack

FINDING = "Persistence:Kubernetes/AdmissionWebhookConfigured"


def test_a_mutating_webhook_is_recorded_with_the_pack():
    [finding] = scan([webhook()], packs=["audit-trail"])
    assert finding["type"] == FINDING and "mutating admission webhook configuration inject" in finding["description"]


def test_validating_webhook_deleted():
    from detectors.real_events import api_event

    record = api_event("delete", "validatingwebhookconfigurations", name="gatekeeper-validating-webhook")
    assert with_pack([record]) == {FINDING}


def test_silent_by_default_and_for_ca_injectors():
    assert types([webhook()]) == set()
    injector = {"username": "system:serviceaccount:cert-manager:cert-manager-cainjector"}
    assert with_pack([webhook(user=injector)]) == set()
