"""A subset of Amazon Detective's API (rest-json, signing name ``detective``) over kubeguard's findings.

boto3's ``detective`` client works with ``endpoint_url``: ``ListGraphs`` returns the one graph (the
detector), and ``StartInvestigation`` / ``GetInvestigation`` / ``ListInvestigations`` / ``ListIndicators``
/ ``UpdateInvestigationState`` investigate a Kubernetes subject, whose entity ARN is
``arn:kubeguard:kubernetes:::cluster/<cluster>/subject/<username>`` (an IAM role or user ARN from EKS
user extras works too: it is matched against the subjects' usernames). Finding groups are served as
kubeguard JSON under ``/api/finding-groups``.
"""

from fastapi import APIRouter, Depends

from kubeguard.api.auth import require_detective_signature, require_signature
from kubeguard.api.detective import groups, investigations


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(investigations.router, dependencies=[Depends(require_detective_signature)])
    router.include_router(groups.router, dependencies=[Depends(require_signature)])
    return router
