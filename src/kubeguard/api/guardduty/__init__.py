"""The GuardDuty-compatible REST API (reference §3), every route behind SigV4 unless access is open."""

from fastapi import APIRouter, Depends

from kubeguard.api.auth import require_signature
from kubeguard.api.guardduty import detectors, filters, findings, ipsets, publishing


def build_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_signature)])
    for module_router in (
        detectors.router,
        findings.router,
        filters.router,
        ipsets.build_router(ipsets.THREAT_INTEL),
        ipsets.build_router(ipsets.TRUSTED),
        publishing.router,
    ):
        router.include_router(module_router)
    return router
