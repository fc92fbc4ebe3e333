"""``kubeguard investigate SUBJECT``: Detective's indicators for a Kubernetes subject.

Three sources, the same answer: audit log files given as arguments (scanned in-process, as ``scan``
does), the store named by ``--db``, or a running service's Detective-compatible API (``--url``; SigV4
with ``--access-key``/``--secret-key`` when the service requires it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from kubeguard.cli.errors import CliError, UsageError, guarded

SCOPE_DAYS = 365


def _when(option: str, text: str | None, default: datetime) -> datetime:
    if not text:
        return default
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: use an ISO 8601 time such as 2026-01-14T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _entity(subject: str, cluster: str | None) -> tuple[str, str | None, str]:
    """(entity ARN, cluster, username) from a username plus --cluster, a subject ARN or an IAM ARN."""
    from kubeguard.correlate.entities import parse_subject_arn, subject_arn

    parsed = parse_subject_arn(subject)
    if parsed is not None:
        return subject, parsed[0], parsed[1]
    if cluster:
        return subject_arn(cluster, subject), cluster, subject
    if subject.startswith("arn:") and (":iam::" in subject or ":assumed-role/" in subject):
        return subject, None, subject
    raise UsageError("name the cluster with --cluster (or give the subject's ARN "
                     "arn:kubeguard:kubernetes:::cluster/<cluster>/subject/<username>)")


def _local(paths: list[str], db: str | None, cluster: str | None, username: str, start: datetime,
           end: datetime) -> dict[str, Any]:
    from kubeguard.correlate.investigations import investigate
    from kubeguard.intel.geo import GeoResolver

    if paths:
        from kubeguard.config import Settings
        from kubeguard.scan import run_scan

        resolver = GeoResolver()
        found = run_scan(paths, Settings(), cluster=None, pipeline_options={"describe_ip": resolver.details}).findings
    else:
        from kubeguard.api.detective.store import cluster_findings
        from kubeguard.store import detectors
        from kubeguard.store.database import open_engine, sqlite_path, url_from_option

        url = url_from_option(db)
        path = sqlite_path(url)
        if path is not None and not path.exists():
            raise UsageError(f"--db {db or path}: no database there (run `kubeguard serve` or give log files)")
        engine = open_engine(url)
        with engine.connect() as conn:
            detector_id = detectors.ensure_default(conn)
            found = cluster_findings(conn, detector_id, cluster)
        engine.dispose()
        resolver = GeoResolver()
    result = investigate(found, cluster, username, int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                         resolver.details)
    return {"Severity": result.severity, "Summary": result.summary, "Indicators": result.indicators}


def _remote(url: str, key: str | None, secret: str | None, entity: str, start: datetime,
            end: datetime) -> dict[str, Any]:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(signature_version=botocore.UNSIGNED) if not key else Config()
    client = boto3.client("detective", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                          aws_secret_access_key=secret, config=config)
    try:
        graphs = client.list_graphs()["GraphList"]
        if not graphs:
            raise CliError(f"{url}: the service has no detector, so nothing to investigate")
        graph = graphs[0]["Arn"]
        started = client.start_investigation(GraphArn=graph, EntityArn=entity, ScopeStartTime=start,
                                             ScopeEndTime=end)["InvestigationId"]
        details = client.get_investigation(GraphArn=graph, InvestigationId=started)
        indicators: list[dict[str, Any]] = []
        token: dict[str, str] = {}
        while True:  # botocore has no paginator for ListIndicators
            page = client.list_indicators(GraphArn=graph, InvestigationId=started, MaxResults=100, **token)
            indicators.extend(page["Indicators"])
            if not page.get("NextToken"):
                break
            token = {"NextToken": page["NextToken"]}
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CliError(f"{url}: {error.get('Code', 'error')}: {error.get('Message', '')}") from exc
    except BotoCoreError as exc:
        raise CliError(f"cannot reach {url}: {exc}") from exc
    return {"InvestigationId": started, "Severity": details["Severity"], "Indicators": indicators}


def _line(indicator: dict[str, Any]) -> str:
    (detail,) = indicator["IndicatorDetail"].values() or [{}]
    text = ", ".join(f"{k}={v}" for k, v in detail.items())
    return f"  {indicator['IndicatorType']:<22} {text}"


@guarded("investigate")
def investigate_command(
    subject: Annotated[str, typer.Argument(help="Username (with --cluster), subject ARN or IAM principal ARN.")],
    paths: Annotated[list[str] | None, typer.Argument(help="Audit log files to scan (else --db or --url).")] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster the subject belongs to.")] = None,
    since: Annotated[str | None, typer.Option(help=f"Scope start, ISO 8601 (default {SCOPE_DAYS} days ago).")] = None,
    until: Annotated[str | None, typer.Option(help="Scope end, ISO 8601 (default now).")] = None,
    url: Annotated[str | None, typer.Option(help="Service URL; uses its Detective-compatible API.")] = None,
    db: Annotated[str | None, typer.Option(help="SQLite file or SQLAlchemy URL, when no --url or files.")] = None,
    access_key: Annotated[str | None, typer.Option(envvar="AWS_ACCESS_KEY_ID", help="SigV4 access key id.")] = None,
    secret_key: Annotated[str | None, typer.Option(envvar="AWS_SECRET_ACCESS_KEY", help="SigV4 secret.")] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Investigate a Kubernetes subject: Detective's indicators (new ASN, client, place; TTPs; related findings)."""
    import orjson

    if output_format not in ("text", "json"):
        raise UsageError(f"--format {output_format!r}: choose text or json")
    entity, where, username = _entity(subject, cluster)
    end = _when("--until", until, datetime.now(UTC))
    start = _when("--since", since, end - timedelta(days=SCOPE_DAYS))
    if start >= end:
        raise UsageError("--since must be before --until")
    if url and paths:
        raise UsageError("give audit log files or --url, not both")
    for path in paths or []:
        if path != "-" and not Path(path).exists():
            raise UsageError(f"no such file or directory: {path}")
    answer = _remote(url, access_key, secret_key, entity, start, end) if url else \
        _local(paths or [], db, where, username, start, end)
    answer = {"EntityArn": entity, "ScopeStartTime": start.isoformat(), "ScopeEndTime": end.isoformat(), **answer}
    if output_format == "json":
        typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(f"{entity}\n  severity {answer['Severity']}, scope {start.isoformat()} to {end.isoformat()}")
    if answer.get("Summary"):
        typer.echo(f"  {answer['Summary']}")
    order = ("FLAGGED_IP_ADDRESS", "IMPOSSIBLE_TRAVEL", "NEW_GEOLOCATION", "NEW_ASO", "NEW_USER_AGENT",
             "TTP_OBSERVED", "RELATED_FINDING_GROUP", "RELATED_FINDING")
    for indicator in sorted(answer["Indicators"], key=lambda i: order.index(i["IndicatorType"])):
        typer.echo(_line(indicator))
