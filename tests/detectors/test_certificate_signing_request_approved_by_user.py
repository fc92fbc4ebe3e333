"""CredentialAccess:Kubernetes/CertificateSigningRequestApprovedByUser."""

from __future__ import annotations

from detectors.extension_cases import csr_approval
from detectors.scanning import scan, types

FINDING = "CredentialAccess:Kubernetes/CertificateSigningRequestApprovedByUser"


def test_a_person_approving_a_client_certificate():
    [finding] = scan([csr_approval()])
    assert finding["type"] == FINDING
    assert "requested by mallory" in finding["description"]
    assert "kubernetes.io/kube-apiserver-client" in finding["description"]


def test_the_controller_manager_approving_kubelet_certificates_is_not_reported():
    approver = {"username": "system:serviceaccount:kube-system:certificate-controller"}
    assert types([csr_approval(user=approver)]) == set()


def test_a_denial_is_not_an_approval():
    assert types([csr_approval(approved=False)]) == set()


def test_a_refused_approval_is_not_reported():
    assert types([csr_approval(code=403)]) == set()
