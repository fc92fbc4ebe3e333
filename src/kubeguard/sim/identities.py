"""Who calls the API server: the ``user`` blocks and user agents real clusters log.

EKS authenticates IAM principals through aws-iam-authenticator (or access entries) and logs them with
an ``extra`` block naming the STS session, the temporary access key and the assumed-role ARN. Several
people often share one mapped username (an SSO role); only ``extra.sessionName`` tells them apart,
which is exactly the case an anomaly detector has to get right, so the roster below includes it.
"""

from __future__ import annotations

import random
import string
from typing import Any

ACCOUNT = "111122223333"
K8S_VERSION = "v1.29.3"
K8S_COMMIT = "6813625"
EKS_BUILD = "v1.29.3-eks-ae9a62a"

KUBECTL_LINUX = f"kubectl/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}"
KUBECTL_MAC = "kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350"
KUBECTL_WINDOWS = "kubectl/v1.28.4 (windows/amd64) kubernetes/bae2c62"
KUBECTL_ATTACKER = "kubectl/v1.31.0 (linux/amd64) kubernetes/9edcffc"
HELM = "Helm/3.14.2"
ARGOCD = "argocd-application-controller/v2.10.4+f5d63a5 (linux/amd64) kubernetes/$Format"
TERRAFORM = "HashiCorp/1.0 Terraform/1.7.5"
KUBELET = f"kubelet/{EKS_BUILD} (linux/amd64) kubernetes/ae9a62a"
CONTROLLER_MANAGER = f"kube-controller-manager/{EKS_BUILD} (linux/amd64) kubernetes/ae9a62a"
SCHEDULER = f"kube-scheduler/{EKS_BUILD} (linux/amd64) kubernetes/ae9a62a"
CURL = "curl/8.5.0"
PYTHON_REQUESTS = "python-requests/2.31.0"
PYTHON_CLIENT = "OpenAPI-Generator/29.0.0/python"

_ALNUM = string.ascii_uppercase + string.digits
_CONTROLLER_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]


def _key(rng: random.Random, prefix: str, length: int = 16) -> str:
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(length))


def uid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng``, so that it is reproducible for a seed."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def access_key_id(rng: random.Random) -> str:
    """An STS temporary access key id (``ASIA...``); each new session gets a new one."""
    return _key(rng, "ASIA")


def iam_user(
    username: str,
    role: str,
    session: str,
    principal_id: str,
    key_id: str,
    groups: list[str],
) -> dict[str, Any]:
    """The ``user`` block of an IAM role session as EKS logs it."""
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    return {
        "username": username,
        "uid": f"aws-iam-authenticator:{ACCOUNT}:{principal_id}",
        "groups": groups,
        "extra": {
            "accessKeyId": [key_id],
            "arn": [f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"],
            "canonicalArn": [role_arn],
            "principalId": [principal_id],
            "sessionName": [session],
        },
    }


def principal_id(rng: random.Random) -> str:
    return _key(rng, "AROA", 17)


def service_account(
    namespace: str, name: str, rng: random.Random, node: str | None = None, pod: str | None = None
) -> dict[str, Any]:
    """A service account token's user. Bound tokens (mounted in a pod) name the pod and the node."""
    extra = {"authentication.kubernetes.io/credential-id": [f"JTI={uid(rng)}"]}
    if node and pod:
        extra["authentication.kubernetes.io/node-name"] = [node]
        extra["authentication.kubernetes.io/node-uid"] = [uid(rng)]
        extra["authentication.kubernetes.io/pod-name"] = [pod]
        extra["authentication.kubernetes.io/pod-uid"] = [uid(rng)]
    return {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "uid": uid(rng),
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
        "extra": extra,
    }


def controller(name: str, rng: random.Random) -> dict[str, Any]:
    """A kube-controller-manager controller running under its own kube-system service account."""
    return {
        "username": f"system:serviceaccount:kube-system:{name}",
        "uid": uid(rng),
        "groups": list(_CONTROLLER_GROUPS),
    }


def control_plane_user(name: str) -> dict[str, Any]:
    """``system:kube-controller-manager`` and ``system:kube-scheduler`` authenticate by certificate."""
    return {"username": name, "groups": ["system:authenticated"]}


def node_user(node: str, instance_id: str, principal: str, key_id: str) -> dict[str, Any]:
    """A kubelet authenticated through the node instance role, as EKS maps it."""
    user = iam_user(
        f"system:node:{node}", "eks-node-role", instance_id, principal, key_id, ["system:nodes"]
    )
    user["groups"] = ["system:bootstrappers", "system:nodes", "system:authenticated"]
    return user


def anonymous() -> dict[str, Any]:
    return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
