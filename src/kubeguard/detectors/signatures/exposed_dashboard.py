"""Policy:Kubernetes/ExposedDashboard and KubeflowDashboardExposed — a dashboard on a public load balancer.

A dashboard Service of type LoadBalancer (or NodePort) puts a cluster-administration UI on the network.
Load balancers the cloud provider makes internal, or whose source ranges hold only private networks, do
not expose it to the internet and are not reported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Service, read_object
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.effect import patch_touches

DASHBOARD = "Policy:Kubernetes/ExposedDashboard"
KUBEFLOW = "Policy:Kubernetes/KubeflowDashboardExposed"
EXPOSING_TYPES = ("LoadBalancer", "NodePort")
DASHBOARD_NAME = "kubernetes-dashboard"
NAME_LABELS = ("k8s-app", "app", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of")
#: The dashboard's own namespace: its Helm chart names Services ``kubernetes-dashboard-web``,
#: ``kubernetes-dashboard-kong-proxy`` and so on.
DASHBOARD_NAMESPACE = "kubernetes-dashboard"
#: State scope: clusters where a ``kubeflow`` namespace was seen (so its ingress gateway fronts Kubeflow).
KUBEFLOW_CLUSTERS = "kubeflow.clusters"

#: Annotations (name → values meaning "internal") that keep a load balancer off the internet.
INTERNAL_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": {"true", "0.0.0.0/0"},
    "service.beta.kubernetes.io/aws-load-balancer-scheme": {"internal"},
    "networking.gke.io/load-balancer-type": {"internal"},
    "cloud.google.com/load-balancer-type": {"internal"},
    "service.beta.kubernetes.io/azure-load-balancer-internal": {"true"},
    "service.beta.kubernetes.io/oci-load-balancer-internal": {"true"},
    "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type": {"private"},
}

#: What a patch must touch to expose a Service anew: its type, its source ranges, the labels that make
#: it a dashboard, or the annotations that keep its load balancer internal.
EXPOSURE_PATHS = (
    ("spec", "type"),
    ("spec", "loadBalancerSourceRanges"),
    *(("metadata", "labels", label) for label in NAME_LABELS),
    *(("metadata", "annotations", name) for name in INTERNAL_ANNOTATIONS),
)


def read_service(event: AuditEvent) -> Service | None:
    return read_object(event, Service, lambda service: service.spec is not None)


def is_internal(service: Service) -> bool:
    annotations = service.metadata.annotations
    for name, internal_values in INTERNAL_ANNOTATIONS.items():
        if annotations.get(name, "").lower() in internal_values:
            return True
    ranges = service.spec.loadBalancerSourceRanges if service.spec else []
    return bool(ranges) and all(_is_private_range(r) for r in ranges)


def _is_private_range(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).is_private
    except ValueError:
        return False


def is_kubernetes_dashboard(service: Service, name: str, namespace: str) -> bool:
    labels = service.metadata.labels
    if name.startswith(DASHBOARD_NAME) or any(labels.get(label) == DASHBOARD_NAME for label in NAME_LABELS):
        return True
    return namespace == DASHBOARD_NAMESPACE and "dashboard" in name


def is_kubeflow_dashboard(service: Service, name: str, namespace: str, kubeflow_present: bool) -> bool:
    if namespace == "kubeflow" and name == "centraldashboard":
        return True
    return kubeflow_present and namespace == "istio-system" and name == "istio-ingressgateway"


def _exposed_service(event: AuditEvent) -> tuple[Service, str, str] | None:
    """The Service a successful write made reachable from outside, with its name and namespace; else None."""
    if not event.succeeded or not patch_touches(event, *EXPOSURE_PATHS):
        return None
    service = read_service(event)
    if service is None or service.spec is None or service.spec.type not in EXPOSING_TYPES or is_internal(service):
        return None
    return service, service.metadata.name or event.name, service.metadata.namespace or event.namespace


class ExposedDashboard:
    name = "exposed-dashboard"
    finding_types = (DASHBOARD, KUBEFLOW)
    wants = (("create", "services"), ("update", "services"), ("patch", "services"))

    @staticmethod
    def relevant(event: AuditEvent) -> bool:
        """False when :meth:`detect` would find nothing: no exposed Service that is, or may be (Kubeflow's
        gateway counts once the cluster was seen running Kubeflow), a dashboard. Reads nothing recorded."""
        exposed = _exposed_service(event)
        if exposed is None:
            return False
        service, name, namespace = exposed
        return is_kubernetes_dashboard(service, name, namespace) or is_kubeflow_dashboard(
            service, name, namespace, kubeflow_present=True)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        exposed = _exposed_service(event)
        if exposed is None:
            return
        service, name, namespace = exposed
        kubeflow_present = ctx.state.seen(KUBEFLOW_CLUSTERS, event.cluster)
        if is_kubernetes_dashboard(service, name, namespace):
            finding, what = DASHBOARD, "The Kubernetes dashboard"
        elif is_kubeflow_dashboard(service, name, namespace, kubeflow_present):
            finding, what = KUBEFLOW, "The Kubeflow dashboard"
        else:
            return
        yield make_detection(
            finding,
            event,
            key=f"services/{namespace}/{name}",
            description=(
                f"{what} Service {namespace}/{name} on cluster {event.cluster} was made reachable through a "
                f"{service.spec.type} Service by {who(event)}."
            ),
            parameters=f'{{"spec":{{"type":"{service.spec.type}"}}}}',
        )
