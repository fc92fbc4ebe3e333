"""``kubeguard findings``: list, show and archive findings, on a running service or the database directly.

``--url`` talks to a service through its GuardDuty API (SigV4-signed with ``--access-key``/``--secret-key``
or the usual AWS environment variables when the service requires it); without ``--url`` the store named by
``--db`` (default: the local SQLite file) is read and written directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import boto3
import botocore
import orjson
import typer
from botocore.config import Config

from kubeguard.findings.criteria import matches
from kubeguard.store import detectors, findings
from kubeguard.store.database import open_engine, url_from_option

app = typer.Typer(help="List, show and archive findings.", no_args_is_help=True)

UrlOption = Annotated[str | None, typer.Option(help="Service URL, e.g. http://127.0.0.1:8080.")]
DbOption = Annotated[str | None, typer.Option(help="SQLite file or SQLAlchemy URL, when no --url.")]
KeyOption = Annotated[str | None, typer.Option(envvar="AWS_ACCESS_KEY_ID", help="SigV4 access key id.")]
SecretOption = Annotated[str | None, typer.Option(envvar="AWS_SECRET_ACCESS_KEY", help="SigV4 secret key.")]


class _Remote:
    def __init__(self, url: str, key: str | None, secret: str | None) -> None:
        config = Config(signature_version=botocore.UNSIGNED) if not key else Config()
        self.client = boto3.client(
            "guardduty",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=config,
        )
        self.detector_id = self.client.list_detectors()["DetectorIds"][0]

    def list(self, criterion: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        ids = self.client.list_findings(
            DetectorId=self.detector_id,
            FindingCriteria={"Criterion": _boto_criterion(criterion)},
            MaxResults=min(limit, 50),
        )["FindingIds"]
        return self.get(ids)

    def get(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        response = self.client.get_findings(DetectorId=self.detector_id, FindingIds=ids)
        return [_summary_from_boto(f) for f in response["Findings"]]

    def archive(self, ids: list[str]) -> None:
        self.client.archive_findings(DetectorId=self.detector_id, FindingIds=ids)


class _Direct:
    def __init__(self, db: str | None) -> None:
        self.engine = open_engine(url_from_option(db))
        with self.engine.begin() as conn:
            self.detector_id = detectors.ensure_default(conn)

    def list(self, criterion: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            found = [f for f in findings.scan(conn, self.detector_id, criterion) if matches(criterion, f)]
        return found[:limit]

    def get(self, ids: list[str]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            found = findings.get_many(conn, self.detector_id, ids)
        return [found[i] for i in ids if i in found]

    def archive(self, ids: list[str]) -> None:
        with self.engine.begin() as conn:
            findings.set_flag(conn, self.detector_id, ids, lambda service: service.__setitem__("archived", True))


def _boto_criterion(criterion: dict[str, Any]) -> dict[str, Any]:
    """boto3 wants PascalCase operator names (``Eq``, ``Gte``)."""
    return {field: {op[0].upper() + op[1:]: v for op, v in cond.items()} for field, cond in criterion.items()}


def _summary_from_boto(finding: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(finding, default=str))


def _source(url: str | None, db: str | None, key: str | None, secret: str | None) -> _Remote | _Direct:
    return _Remote(url, key, secret) if url else _Direct(db)


def _field(finding: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in finding:
            return finding[name]
    return ""


@app.command("list")
def list_findings(
    url: UrlOption = None,
    db: DbOption = None,
    access_key: KeyOption = None,
    secret_key: SecretOption = None,
    type: Annotated[str | None, typer.Option(help="Only this finding type.")] = None,
    min_severity: Annotated[int, typer.Option(help="Only findings at least this severe.")] = 0,
    archived: Annotated[bool, typer.Option(help="Include archived findings.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """One line per finding: id, severity, type, cluster, count, last seen."""
    criterion: dict[str, Any] = {}
    if type:
        criterion["type"] = {"eq": [type]}
    if min_severity:
        criterion["severity"] = {"gte": min_severity}
    if not archived:
        criterion["service.archived"] = {"eq": ["false"]}
    for finding in _source(url, db, access_key, secret_key).list(criterion, limit):
        service = _field(finding, "service", "Service") or {}
        cluster = _field(_field(finding, "resource", "Resource"), "eksClusterDetails", "EksClusterDetails") or {}
        typer.echo(
            f"{_field(finding, 'id', 'Id')}  {float(_field(finding, 'severity', 'Severity')):4.1f}  "
            f"{_field(finding, 'type', 'Type')}  {_field(cluster, 'name', 'Name')}  "
            f"x{_field(service, 'count', 'Count')}  {_field(service, 'eventLastSeen', 'EventLastSeen')}"
        )


@app.command()
def show(
    finding_ids: Annotated[list[str], typer.Argument(help="Finding ids.")],
    url: UrlOption = None,
    db: DbOption = None,
    access_key: KeyOption = None,
    secret_key: SecretOption = None,
) -> None:
    """Print findings as JSON."""
    found = _source(url, db, access_key, secret_key).get(finding_ids)
    typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


@app.command()
def archive(
    finding_ids: Annotated[list[str], typer.Argument(help="Finding ids.")],
    url: UrlOption = None,
    db: DbOption = None,
    access_key: KeyOption = None,
    secret_key: SecretOption = None,
) -> None:
    """Archive findings (the analyst's "done")."""
    _source(url, db, access_key, secret_key).archive(finding_ids)
    typer.echo(f"archived {len(finding_ids)} finding(s)")
