"""The one rule of what a request did (detectors/effect.py), as a table."""

from __future__ import annotations

import pytest

from detectors.real_events import api_event, exec_event
from detectors.scanning import decode
from kubeguard.detectors.effect import Outcome, is_bootstrap_change, is_controller, outcome, patch_touches


def event(record):
    [decoded] = decode([record])
    return decoded


@pytest.mark.parametrize(("record", "expected"), [
    (api_event("create", "pods", namespace="dev"), Outcome.APPLIED),
    (api_event("delete", "pods", name="p", namespace="dev", code=200), Outcome.APPLIED),
    (api_event("create", "pods", namespace="dev", query="dryRun=All"), Outcome.DRY_RUN),
    (api_event("create", "pods", namespace="dev", code=403), Outcome.FAILED),
    (api_event("get", "pods", name="gone", namespace="dev", code=404), Outcome.FAILED),
    (api_event("create", "pods", namespace="dev", code=409), Outcome.FAILED),
    (api_event("patch", "pods", name="p", namespace="dev", code=422), Outcome.FAILED),
    (api_event("create", "pods", namespace="dev", code=500), Outcome.FAILED),
    (api_event("create", "pods", namespace="dev", code=403, query="dryRun=All"), Outcome.FAILED),
    (exec_event("dev", "web-1"), Outcome.APPLIED),
    (exec_event("dev", "web-1", code=200), Outcome.FAILED),  # an exec that was not upgraded ran nothing
    (exec_event("dev", "web-1", code=400), Outcome.FAILED),
    (exec_event("dev", "web-1", subresource="attach"), Outcome.APPLIED),
    ({**api_event("get", "nodes", name="n1", subresource="proxy", code=101)}, Outcome.APPLIED),
    ({k: v for k, v in api_event("create", "pods", namespace="dev").items() if k != "responseStatus"},
     Outcome.FAILED),  # no status logged: not known to have done anything
])
def test_outcome(record, expected):
    assert outcome(event(record)) is expected


SPEC = (("spec", "template", "spec"),)


@pytest.mark.parametrize(("body", "touches"), [
    ({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}}, True),
    ({"spec": {"replicas": 3}}, False),
    ({"metadata": {"labels": {"a": "b"}}}, False),
    ({"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}, False),
    ([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "x"}], True),
    ([{"op": "replace", "path": "/spec", "value": {}}], True),  # a parent of the path
    ([{"op": "add", "path": "/metadata/labels/app~1name", "value": "x"}], False),
    ([{"op": "remove", "path": "/spec/replicas"}], False),
    (None, True),  # no body logged: nothing is known, so it may have touched anything
])
def test_patch_touches(body, touches):
    record = api_event("patch", "deployments", name="d", namespace="dev", body=body, response={})
    if body is None:
        record.pop("requestObject", None)
    assert patch_touches(event(record), *SPEC) is touches


def test_patch_touches_is_only_about_patches():
    assert patch_touches(event(api_event("update", "deployments", name="d", namespace="dev",
                                         body={"metadata": {"labels": {}}})), *SPEC)


@pytest.mark.parametrize(("user", "impersonate", "controller"), [
    ("system:kube-controller-manager", None, True),
    ("system:serviceaccount:kube-system:deployment-controller", None, True),
    ("system:serviceaccount:kube-system:generic-garbage-collector", None, True),
    ("system:serviceaccount:kube-system:metrics-server", None, False),
    ("system:serviceaccount:argocd:argocd-application-controller", None, False),
    ("kubernetes-admin", {"username": "system:kube-controller-manager"}, False),
])
def test_controllers(user, impersonate, controller):
    record = api_event("update", "deployments", name="d", namespace="dev", user={"username": user},
                       impersonate=impersonate)
    assert is_controller(event(record)) is controller


def test_bootstrap_is_the_api_server_in_its_own_name():
    apiserver = {"username": "system:apiserver", "groups": ["system:masters"]}
    assert is_bootstrap_change(event(api_event("create", "clusterrolebindings", user=apiserver)))
    assert not is_bootstrap_change(event(api_event("create", "clusterrolebindings", impersonate=apiserver)))
    assert not is_bootstrap_change(event(api_event("create", "clusterrolebindings")))
