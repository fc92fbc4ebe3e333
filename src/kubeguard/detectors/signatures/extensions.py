"""kubeguard's own detections beyond GuardDuty's catalogue, split into on-by-default and the audit-trail pack.

The split is the product decision of issue 12: on by default only what stays silent on ordinary
administration; detections of ordinary-but-powerful work (granting cluster-admin, exec into an app pod,
creating roles, installing add-ons in kube-system) ship in the opt-in audit-trail pack.
"""

from __future__ import annotations

from kubeguard.detectors.base import Detector
from kubeguard.detectors.signatures.admission_webhook_configured import AdmissionWebhookConfigured
from kubeguard.detectors.signatures.certificate_signing_request_approved_by_user import (
    CertificateSigningRequestApprovedByUser,
)
from kubeguard.detectors.signatures.cluster_admin_role_bound import ClusterAdminRoleBound
from kubeguard.detectors.signatures.configmap_with_private_credentials import ConfigMapWithPrivateCredentials
from kubeguard.detectors.signatures.container_with_dangerous_capabilities import ContainerWithDangerousCapabilities
from kubeguard.detectors.signatures.exec_in_pod import ExecInPod
from kubeguard.detectors.signatures.kubelet_command_through_node_proxy import KubeletCommandThroughNodeProxy
from kubeguard.detectors.signatures.node_port_service_created import NodePortServiceCreated
from kubeguard.detectors.signatures.permissive_cluster_role_created import PermissiveClusterRoleCreated
from kubeguard.detectors.signatures.privileged_identity_impersonated import PrivilegedIdentityImpersonated
from kubeguard.detectors.signatures.service_account_created_in_system_namespace import (
    ServiceAccountCreatedInSystemNamespace,
)
from kubeguard.detectors.signatures.system_cluster_role_modified import SystemClusterRoleModified
from kubeguard.detectors.signatures.system_service_account_token_requested import (
    SystemServiceAccountTokenRequested,
)
from kubeguard.detectors.signatures.workload_created_in_system_namespace import WorkloadCreatedInSystemNamespace
from kubeguard.detectors.signatures.workload_in_host_namespaces import WorkloadInHostNamespaces


def on_by_default() -> list[Detector]:
    return [
        PrivilegedIdentityImpersonated(),
        SystemServiceAccountTokenRequested(),
        CertificateSigningRequestApprovedByUser(),
        SystemClusterRoleModified(),
        KubeletCommandThroughNodeProxy(),
        ConfigMapWithPrivateCredentials(),
    ]


def audit_trail() -> list[Detector]:
    return [
        ContainerWithDangerousCapabilities(),
        PermissiveClusterRoleCreated(),
        ClusterAdminRoleBound(),
        WorkloadCreatedInSystemNamespace(),
        ServiceAccountCreatedInSystemNamespace(),
        ExecInPod(),
        NodePortServiceCreated(),
        WorkloadInHostNamespaces(),
        AdmissionWebhookConfigured(),
    ]
