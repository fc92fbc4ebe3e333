"""S3 export like GuardDuty's publishing destination: one gzip JSONL object per interval.

Objects are named as GuardDuty names them, ``[prefix/]AWSLogs/{account}/GuardDuty/{region}/YYYY/MM/DD/
{uuid}.jsonl.gz``, one finding (the bare GuardDuty finding by default, which Athena's GuardDuty table reads)
per line, encrypted with the destination's KMS key when one is given. The sink runs at an interval: what
became due during it goes out as one object (split past ``MAX_OBJECT_FINDINGS``).
"""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime
from typing import Any

from kubeguard.sinks.aws import aws_client, call
from kubeguard.sinks.delivery import Item, SinkEnv
from kubeguard.sinks.options import S3Options

MAX_OBJECT_FINDINGS = 10_000


def parse_bucket_arn(arn: str) -> tuple[str, str]:
    """``arn:aws:s3:::bucket/optional/prefix`` -> (bucket, prefix); raises ValueError otherwise."""
    head, _, rest = arn.partition(":::")
    if not head.startswith("arn:") or not head.endswith(":s3") or not rest:
        raise ValueError(f"not an S3 bucket ARN: {arn!r} (expected arn:aws:s3:::bucket[/prefix])")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def object_key(prefix: str, account: str, region: str, moment: datetime) -> str:
    path = f"AWSLogs/{account}/GuardDuty/{region}/{moment:%Y/%m/%d}/{uuid.uuid4()}.jsonl.gz"
    return f"{prefix.strip('/')}/{path}" if prefix.strip("/") else path


class S3Destination:
    batch_size = MAX_OBJECT_FINDINGS

    def __init__(self, options: S3Options, env: SinkEnv) -> None:
        self.name = options.name or f"s3:{options.bucket}/{options.prefix}".rstrip("/")
        self.options = options
        self.renderer = env.renderer
        self.account = env.account
        self.region = options.region or env.region
        self.interval_seconds = options.interval_seconds
        self.client = aws_client("s3", options, env.region)

    def deliver(self, items: list[Item]) -> None:
        body = gzip.compress(b"".join(self.renderer.body(item) + b"\n" for item in items))
        extra: dict[str, Any] = {}
        if self.options.kms_key_arn:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.options.kms_key_arn}
        key = object_key(self.options.prefix, self.account, self.region, datetime.now(UTC))
        call(
            self.client.put_object,
            Bucket=self.options.bucket,
            Key=key,
            Body=body,
            ContentType="application/gzip",
            **extra,
        )

    def close(self) -> None:
        self.client.close()
