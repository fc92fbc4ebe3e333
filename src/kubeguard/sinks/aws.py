"""AWS clients for the AWS sinks, with boto3's standard credential chain, and their errors classified.

Credentials are never in kubeguard's configuration: environment, shared config/profile, web identity
(IRSA / EKS Pod Identity) or the instance role, as boto3 finds them. ``endpoint_url`` (or boto3's own
``AWS_ENDPOINT_URL_<SERVICE>``) points a sink at an emulator or a VPC endpoint.
"""

from __future__ import annotations

from typing import Any

from kubeguard.extras import require
from kubeguard.sinks.delivery import DeliveryError, PermanentFailure
from kubeguard.sinks.options import AwsOptions

#: Error codes that say the request itself is wrong; anything else (throttling, access, missing resource,
#: 5xx) may pass later, so those events stay in the outbox.
REFUSED_CODES = frozenset(
    {
        "ValidationException",
        "ValidationError",
        "InvalidParameter",
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidInputException",
        "InvalidInput",
        "InvalidMessageContents",
        "InvalidArgument",
        "MalformedPolicyDocument",
        "MessageTooLong",
        "BatchRequestTooLong",
        "InvalidAttributeName",
        "InvalidAttributeValue",
        "EntityTooLarge",
    }
)


def aws_client(service: str, options: AwsOptions, default_region: str) -> Any:
    """A client for ``service``; without ``kubeguard[aws]`` installed, start-up stops naming the extra."""
    boto3 = require("boto3")
    from botocore.config import Config

    session = boto3.session.Session(profile_name=options.profile or None)
    region = options.region or session.region_name or default_region
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=options.timeout_seconds,
        read_timeout=options.timeout_seconds,
    )
    return session.client(service, region_name=region, endpoint_url=options.endpoint_url or None, config=config)


def aws_failure(error: Exception) -> DeliveryError:
    """A boto3 exception as a delivery failure, with the service's code and message as the reason."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        detail = f"{code}: {info.get('Message', '')}".strip()
        return PermanentFailure(detail) if refused(code) else DeliveryError(detail)
    if isinstance(error, BotoCoreError):
        return DeliveryError(f"{type(error).__name__}: {error}")
    return DeliveryError(f"{type(error).__name__}: {error}")


def refused(code: str) -> bool:
    return code in REFUSED_CODES


def call(method: Any, **kwargs: Any) -> Any:
    """Call one SDK operation, turning its exceptions into delivery failures."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(error) from error
