"""Helpers for rule tests: a rule from a detection block, and an event from a dict."""

from __future__ import annotations

from typing import Any

import yaml
from conftest import build_event

from kubeguard.detectors.rules.fields import EventView
from kubeguard.detectors.rules.load import Rule, parse_rules

BASE_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "a1",
    "stage": "ResponseComplete",
    "verb": "create",
    "requestURI": "/api/v1/namespaces/dev/pods",
    "user": {"username": "alice", "groups": ["devs", "system:authenticated"],
             "extra": {"sessionName": ["s1"]}},
    "sourceIPs": ["10.1.2.3", "2001:db8::7"],
    "userAgent": "kubectl/v1.32.4 (linux/amd64)",
    "objectRef": {"resource": "pods", "namespace": "dev", "name": "web", "apiVersion": "v1"},
    "responseStatus": {"code": 201},
    "requestObject": {
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {
            "hostNetwork": True,
            "containers": [
                {"name": "a", "image": "nginx:1.27", "securityContext": {"privileged": False}},
                {"name": "b", "image": "evil/miner:latest", "securityContext": {"privileged": True},
                 "ports": [{"containerPort": 8080}]},
            ],
        },
    },
    "annotations": {"authorization.k8s.io/decision": "allow"},
    "stageTimestamp": "2026-11-30T10:00:00.000000Z",
}


def rule(detection: dict[str, Any], **meta: Any) -> Rule:
    document = {
        "title": meta.pop("title", "Test rule"),
        "logsource": {"product": "kubernetes", "service": "audit"},
        "detection": detection,
        **meta,
    }
    [compiled] = parse_rules(yaml.safe_dump(document, sort_keys=False))
    return compiled


def matches(detection: dict[str, Any], event: dict[str, Any] | None = None, **changes: Any) -> bool:
    document = {**BASE_EVENT, **changes} if event is None else event
    return rule(detection).matches(EventView(build_event(document)))
