"""The shipped audit policy (deploy/audit-policy.yaml) logs what every detector reads.

A detector that never sees its events is silent, not wrong, so nothing else would catch a policy that drops
them. The policy is evaluated here the way kube-apiserver does: the first rule whose verbs, resources (with
their API group) and non-resource URLs all match decides the level.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import yaml

from kubeguard.detectors.base import ANY
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.signatures.admin_access_to_default_service_account import (
    AdminAccessToDefaultServiceAccount,
)
from kubeguard.detectors.signatures.anonymous_access_granted import AnonymousAccessGranted
from kubeguard.detectors.signatures.container_with_sensitive_mount import ContainerWithSensitiveMount
from kubeguard.detectors.signatures.exposed_dashboard import ExposedDashboard
from kubeguard.detectors.signatures.privileged_container import PrivilegedContainer

POLICY = yaml.safe_load((Path(__file__).resolve().parents[1] / "deploy" / "audit-policy.yaml").read_text())
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
#: Detectors that read request or response bodies: they need RequestResponse for what they want.
BODY_READERS = (PrivilegedContainer, ContainerWithSensitiveMount, AdminAccessToDefaultServiceAccount,
                AnonymousAccessGranted, ExposedDashboard)
#: The API group each resource a detector names lives in.
GROUPS = {
    "pods": "", "pods/exec": "", "pods/attach": "", "pods/portforward": "", "pods/ephemeralcontainers": "",
    "services": "", "secrets": "", "configmaps": "", "serviceaccounts": "", "serviceaccounts/token": "",
    "replicationcontrollers": "", "namespaces": "", "events": "", "nodes": "", "nodes/proxy": "",
    "deployments": "apps", "daemonsets": "apps", "statefulsets": "apps", "replicasets": "apps",
    "jobs": "batch", "cronjobs": "batch",
    "roles": "rbac.authorization.k8s.io", "rolebindings": "rbac.authorization.k8s.io",
    "clusterroles": "rbac.authorization.k8s.io", "clusterrolebindings": "rbac.authorization.k8s.io",
    "selfsubjectaccessreviews": "authorization.k8s.io", "selfsubjectrulesreviews": "authorization.k8s.io",
    "subjectaccessreviews": "authorization.k8s.io", "tokenreviews": "authentication.k8s.io",
    "certificatesigningrequests": "certificates.k8s.io", "certificatesigningrequests/approval": "certificates.k8s.io",
    "validatingwebhookconfigurations": "admissionregistration.k8s.io",
    "mutatingwebhookconfigurations": "admissionregistration.k8s.io",
    "networkpolicies": "networking.k8s.io",
}


def level_for(verb: str, resource: str | None = None, url: str | None = None) -> str:
    for rule in POLICY["rules"]:
        if rule.get("verbs") and verb not in rule["verbs"]:
            continue
        if url is not None:
            if any(fnmatch.fnmatchcase(url, pattern) for pattern in rule.get("nonResourceURLs", [])) or (
                "nonResourceURLs" not in rule and "resources" not in rule
            ):
                return rule["level"]
            continue
        if "nonResourceURLs" in rule:
            continue
        groups = rule.get("resources")
        if groups is None or any(
            group.get("group", "") == GROUPS.get(resource, "") and (
                not group.get("resources") or resource in group["resources"]
            )
            for group in groups
        ):
            return rule["level"]
    return POLICY.get("level", "None")


def _wants(detectors):
    for detector in detectors:
        for verb, resource in detector.wants:
            if resource != ANY:
                for concrete in ("create", "get", "list", "update", "patch", "delete") if verb == ANY else (verb,):
                    yield type(detector).__name__, concrete, resource


@pytest.mark.parametrize(("detector", "verb", "resource"), sorted(set(_wants(default_detectors()))))
def test_every_detector_sees_its_events(detector, verb, resource):
    assert resource in GROUPS, f"add {resource}'s API group to GROUPS"
    assert LEVELS.index(level_for(verb, resource)) >= LEVELS.index("Metadata"), (detector, verb, resource)


@pytest.mark.parametrize(("detector", "verb", "resource"), sorted(set(_wants(cls() for cls in BODY_READERS))))
def test_detectors_that_read_bodies_get_them(detector, verb, resource):
    assert level_for(verb, resource) == "RequestResponse", (detector, verb, resource)


@pytest.mark.parametrize(("verb", "resource"), [("delete", "events"), ("deletecollection", "events"),
                                                ("get", "secrets"), ("list", "secrets"),
                                                ("create", "serviceaccounts/token"),
                                                ("create", "certificatesigningrequests")])
def test_the_tactics_table_sees_its_calls(verb, resource):
    assert level_for(verb, resource) != "None"


def test_secret_contents_and_event_noise_stay_out():
    assert level_for("get", "secrets") == "Metadata"
    assert level_for("create", "events") == "None"
    assert level_for("get", url="/healthz") == "None"
