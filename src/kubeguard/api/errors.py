"""Errors in the AWS rest-json shape, so boto3 and the AWS CLI raise the right exception class.

botocore reads the error code from the ``X-Amzn-ErrorType`` header (the text before ``:``) or from the
body's ``__type``; we send both, with ``message`` in the body.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client; ``code`` is the AWS exception name."""

    status = 400
    code = "BadRequestException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    pass


class AccessDenied(ApiError):
    status = 403
    code = "AccessDeniedException"


class Unauthorized(ApiError):
    """Missing or wrong credentials on a route that is not part of the GuardDuty model (the webhook)."""

    status = 401
    code = "UnauthorizedException"


class PayloadTooLarge(ApiError):
    status = 413
    code = "PayloadTooLargeException"


class UnsupportedOperation(ApiError):
    """A GuardDuty operation kubeguard does not implement (malware scans, members, organizations ...)."""

    code = "UnsupportedOperationException"


#: First path segments of GuardDuty's REST API; an unknown route under one of them is an operation of
#: GuardDuty's that kubeguard does not implement, not a mistyped URL.
GUARDDUTY_PREFIXES = frozenset({
    "detector", "admin", "invitation", "invitations", "organization", "member", "members",
    "malware-protection-plan", "malware-scan", "malware-scans", "tags", "usage", "coverage", "datasources",
    "publishingDestination", "threatintelset", "ipset", "filter", "findings", "findingstats", "administrator",
    "master", "organizationconfiguration", "remaining-free-trial-days", "threat-entity-set",
    "trusted-entity-set", "accept", "decline", "disassociate",
})


def unsupported_operation(method: str, path: str) -> UnsupportedOperation | None:
    """The error for a GuardDuty-shaped request no route serves, or None for any other unknown path."""
    segments = [segment for segment in path.split("/") if segment]
    if not segments or segments[0] not in GUARDDUTY_PREFIXES:
        return None
    return UnsupportedOperation(
        f"kubeguard does not implement {method} {path[:200]} of the GuardDuty API; the README's "
        "'GuardDuty API' section lists the operations it serves"
    )


class InternalServerError(ApiError):
    status = 500
    code = "InternalServerErrorException"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message, "__type": code},
        status_code=status,
        headers={"X-Amzn-ErrorType": code},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Turn every failure, including unknown routes and crashes, into the AWS error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, BadRequest.code, f"invalid request: {exc.errors()!s:.500}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):
            unsupported = unsupported_operation(request.method, request.url.path)
            if unsupported is not None:
                return error_response(unsupported.status, unsupported.code, unsupported.message)
        code = "ResourceNotFoundException" if exc.status_code == 404 else BadRequest.code
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, InternalServerError.code, "internal error")
