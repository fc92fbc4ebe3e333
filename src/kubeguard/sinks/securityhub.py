"""AWS Security Hub ``BatchImportFindings``: findings in ASFF, up to 100 per call.

Each import carries the whole finding, so a later occurrence or an archive simply re-imports it under the
same ``Id`` (Security Hub updates in place); an archived finding is imported with RecordState ARCHIVED
and Workflow RESOLVED. Security Hub answers per finding: the ones it fails are retried or dropped by
their error code.
"""

from __future__ import annotations

from kubeguard.findings.formats.asff import asff_finding
from kubeguard.sinks.aws import aws_client, call, refused
from kubeguard.sinks.delivery import Item, PartialFailure, SinkEnv
from kubeguard.sinks.options import SecurityHubOptions

RETRIED_CODES = frozenset({"InternalException", "ThrottlingException", "LimitExceededException"})


class SecurityHubDestination:
    batch_size = 100

    def __init__(self, options: SecurityHubOptions, env: SinkEnv) -> None:
        self.name = options.name or "securityhub"
        self.client = aws_client("securityhub", options, env.region)

    def deliver(self, items: list[Item]) -> None:
        documents = [asff_finding(item.finding, item.link) for item in items]
        response = call(self.client.batch_import_findings, Findings=documents)
        if not response.get("FailedCount"):
            return
        index_of = {document["Id"]: index for index, document in enumerate(documents)}
        failed: dict[int, tuple[str, bool]] = {}
        for failure in response.get("FailedFindings", []):
            code = str(failure.get("ErrorCode", "Unknown"))
            permanent = code not in RETRIED_CODES and (refused(code) or code.startswith("Invalid"))
            failed[index_of.get(failure.get("Id"), 0)] = (f"{code}: {failure.get('ErrorMessage', '')}", permanent)
        raise PartialFailure(failed)

    def close(self) -> None:
        self.client.close()
