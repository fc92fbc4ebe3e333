"""Cloud export envelopes: EKS via CloudWatch Logs, GKE Cloud Logging LogEntry, AKS diagnostic records."""

from __future__ import annotations

import json

import pytest

from kubeguard.audit.decode import decode_bytes, sniff_record_format
from kubeguard.audit.envelopes import aks_cluster_from_resource_id, eks_cluster_from_log_group

from . import lab_envelopes as wrap

POD_CREATE = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "5b9e-pod",
    "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/dev/pods?fieldManager=kubectl-create",
    "verb": "create", "user": {"username": "kubernetes-admin", "groups": ["system:masters"]},
    "sourceIPs": ["203.0.113.7"], "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
    "objectRef": {"resource": "pods", "namespace": "dev", "name": "x", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "dev"},
                      "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
    "responseObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "dev"},
                       "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    "stageTimestamp": "2026-11-27T17:48:00.120000Z",
}


def _only(data: bytes, **options):
    result = decode_bytes(data, **options)
    assert result.rejects == []
    [event] = result.events
    return event


def _same_event(event):
    assert (event.auditID, event.verb, event.resource, event.namespace, event.name) == (
        "5b9e-pod", "create", "pods", "dev", "x")
    assert event.user.username == "kubernetes-admin"
    assert event.sourceIPs == ["203.0.113.7"]
    assert event.status_code == 201
    assert json.loads(bytes(event.responseObject))["spec"]["containers"][0]["image"] == "busybox:1.36"


# -- CloudWatch -----------------------------------------------------------------------------------

def test_filter_log_events_response_names_no_cluster():
    data = wrap.cloudwatch_filter_response([POD_CREATE])
    assert sniff_record_format(data) == "cloudwatch"
    event = _only(data)
    _same_event(event)
    assert event.cluster == "default"


def test_one_message_per_line_export():
    _same_event(_only(wrap.cloudwatch_message_lines([POD_CREATE])))


def test_subscription_batch_takes_cluster_from_log_group():
    event = _only(wrap.cloudwatch_subscription([POD_CREATE]))
    _same_event(event)
    assert event.cluster == "lab-eks"


@pytest.mark.parametrize(("group", "cluster"), [
    ("/aws/eks/prod-eu/cluster", "prod-eu"), ("/aws/eks/a.b-c/cluster", "a.b-c"),
    ("/aws/lambda/fn", ""), ("eks", ""),
])
def test_eks_cluster_from_log_group(group, cluster):
    assert eks_cluster_from_log_group(group) == cluster


def test_cloudwatch_message_that_is_not_an_event_is_rejected_and_the_rest_read():
    lines = wrap.cloudwatch_message_lines([POD_CREATE]) + b'{"message": "I0527 kube-apiserver started"}\n'
    result = decode_bytes(lines, input_format="cloudwatch")
    assert len(result.events) == 1 and [r.line for r in result.rejects] == [2]


# -- GKE ------------------------------------------------------------------------------------------

def test_gke_log_entry_is_rebuilt_into_the_event():
    entry = wrap.gke_log_entry(POD_CREATE)
    assert entry["protoPayload"]["methodName"] == "io.k8s.core.v1.pods.create"
    assert entry["protoPayload"]["resourceName"] == "core/v1/namespaces/dev/pods/x"
    event = _only(json.dumps(entry).encode())
    _same_event(event)
    assert event.requestURI == "/api/v1/namespaces/dev/pods"
    assert event.userAgent == POD_CREATE["userAgent"]
    assert event.stageTimestamp == POD_CREATE["stageTimestamp"]
    assert event.cluster == "lab-gke"
    assert event.authorized


def test_gke_denied_call_maps_permission_denied_to_403():
    denied = {**POD_CREATE, "responseStatus": {"code": 403, "reason": "Forbidden"},
              "annotations": {"authorization.k8s.io/decision": "forbid"}}
    entry = wrap.gke_log_entry(denied)
    assert entry["protoPayload"]["status"] == {"code": 7, "message": "Forbidden"}
    event = _only(json.dumps(entry).encode())
    assert event.status_code == 403 and not event.succeeded and not event.authorized


def test_gke_exec_subresource_and_cluster_scoped_binding():
    exec_event = {**POD_CREATE, "verb": "get", "objectRef": {"resource": "pods", "namespace": "kube-system",
                                                             "name": "coredns-1", "subresource": "exec",
                                                             "apiVersion": "v1"},
                  "requestObject": None, "responseObject": None}
    entry = wrap.gke_log_entry(exec_event)
    assert entry["protoPayload"]["methodName"] == "io.k8s.core.v1.pods.exec.get"
    event = _only(json.dumps(entry).encode())
    assert (event.verb, event.namespace, event.name, event.subresource) == ("get", "kube-system", "coredns-1",
                                                                           "exec")
    assert event.requestURI == "/api/v1/namespaces/kube-system/pods/coredns-1/exec"
    binding = {**POD_CREATE, "objectRef": {"resource": "clusterrolebindings", "name": "anon",
                                           "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"}}
    event = _only(json.dumps(wrap.gke_log_entry(binding)).encode())
    assert (event.resource, event.namespace, event.name) == ("clusterrolebindings", "", "anon")
    assert event.requestURI == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"


def test_gke_entry_of_another_service_is_rejected():
    entry = wrap.gke_log_entry(POD_CREATE)
    entry["protoPayload"]["serviceName"] = "compute.googleapis.com"
    result = decode_bytes(json.dumps(entry).encode())
    assert result.events == [] and "not a k8s.io audit entry" in result.rejects[0].reason


# -- AKS ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("as_string", [False, True])
def test_aks_record_with_log_as_object_or_string(as_string):
    data = wrap.aks_lines([POD_CREATE], log_as_string=as_string)
    assert sniff_record_format(data) == "aks"
    event = _only(data)
    _same_event(event)
    assert event.cluster == "lab-aks"


def test_aks_records_batch_skips_other_categories():
    other = {"category": "kube-apiserver", "resourceId": wrap.AKS_RESOURCE_ID,
             "properties": {"log": "I0527 09:31:07 started", "pod": "kube-apiserver-1"}}
    batch = {"records": [wrap.aks_record(POD_CREATE, log_as_string=True), other]}
    event = _only(json.dumps(batch).encode())
    _same_event(event)


@pytest.mark.parametrize(("resource_id", "cluster"), [
    (wrap.AKS_RESOURCE_ID, "lab-aks"),
    ("/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/Prod/", "prod"),
    ("/subscriptions/x", ""),
])
def test_aks_cluster_from_resource_id(resource_id, cluster):
    assert aks_cluster_from_resource_id(resource_id) == cluster


def test_input_format_override_reads_an_envelope_as_native_and_rejects_it():
    result = decode_bytes(wrap.aks_lines([POD_CREATE], log_as_string=True), input_format="native")
    assert result.events == [] and len(result.rejects) == 1
