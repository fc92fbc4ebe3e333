"""``kubeguard findings``: list, show and archive findings, on a running service or the database directly.

``--url`` talks to a service through its GuardDuty API (SigV4-signed with ``--access-key``/``--secret-key``
or the usual AWS environment variables when the service requires it); without ``--url`` the store named by
``--db`` (default: the local SQLite file) is read and written directly. Both print the same camelCase wire
form that GetFindings returns.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubeguard.cli.errors import CliError, UsageError, guarded

app = typer.Typer(help="List, show and archive findings.", no_args_is_help=True)

UrlOption = Annotated[str | None, typer.Option(help="Service URL, e.g. http://127.0.0.1:8080.")]
DbOption = Annotated[str | None, typer.Option(help="SQLite file or SQLAlchemy URL, when no --url.")]
CreateOption = Annotated[bool, typer.Option("--create", help="Create the --db database if it does not exist.")]
KeyOption = Annotated[str | None, typer.Option(envvar="AWS_ACCESS_KEY_ID", help="SigV4 access key id.")]
SecretOption = Annotated[str | None, typer.Option(envvar="AWS_SECRET_ACCESS_KEY", help="SigV4 secret key.")]


class _Remote:
    """A service's GuardDuty API through boto3; findings are taken from the raw camelCase response body."""

    def __init__(self, url: str, key: str | None, secret: str | None) -> None:
        from kubeguard.extras import require

        boto3 = require("boto3")
        import botocore
        from botocore.config import Config

        config = Config(signature_version=botocore.UNSIGNED) if not key else Config()
        self.url = url
        self.client = boto3.client(
            "guardduty",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=config,
        )
        self._raw: dict[str, bytes] = {}
        self.client.meta.events.register("after-call.guardduty.GetFindings", self._keep_body)
        self.detector_id = self._call(self.client.list_detectors)["DetectorIds"][0]

    def _keep_body(self, http_response: Any, **_: Any) -> None:
        self._raw["GetFindings"] = http_response.content

    def _call(self, operation: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return operation(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CliError(f"{self.url}: {error.get('Code', 'error')}: {error.get('Message', '')}") from exc
        except BotoCoreError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from exc

    def list(self, criterion: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        ids = self._call(
            self.client.list_findings,
            DetectorId=self.detector_id,
            FindingCriteria={"Criterion": _boto_criterion(criterion)},
            MaxResults=min(limit, 50),
        )["FindingIds"]
        return self.get(ids)

    def get(self, ids: list[str]) -> list[dict[str, Any]]:
        import orjson

        if not ids:
            return []
        self._call(self.client.get_findings, DetectorId=self.detector_id, FindingIds=ids)
        by_id = {f["id"]: f for f in orjson.loads(self._raw.pop("GetFindings"))["findings"]}
        return [by_id[i] for i in ids if i in by_id]

    def archive(self, ids: list[str]) -> None:
        self._call(self.client.archive_findings, DetectorId=self.detector_id, FindingIds=ids)


class _Direct:
    def __init__(self, db: str | None, create: bool) -> None:
        from kubeguard.store import detectors
        from kubeguard.store.database import open_engine, sqlite_path, url_from_option

        url = url_from_option(db)
        path = sqlite_path(url)
        if path is not None and not path.exists() and not create:
            raise UsageError(f"--db {db or path}: no database there (run `kubeguard serve` or pass --create)")
        self.engine = open_engine(url)
        with self.engine.begin() as conn:
            self.detector_id = detectors.ensure_default(conn)

    def list(self, criterion: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        from kubeguard.findings.criteria import matches
        from kubeguard.store import findings

        with self.engine.connect() as conn:
            found = [f for f in findings.scan(conn, self.detector_id, criterion) if matches(criterion, f)]
        return found[:limit]

    def get(self, ids: list[str]) -> list[dict[str, Any]]:
        from kubeguard.store import findings

        with self.engine.connect() as conn:
            found = findings.get_many(conn, self.detector_id, ids)
        return [found[i] for i in ids if i in found]

    def archive(self, ids: list[str]) -> None:
        from kubeguard.store import findings

        with self.engine.begin() as conn:
            findings.set_flag(conn, self.detector_id, ids, lambda service: service.__setitem__("archived", True))


def _boto_criterion(criterion: dict[str, Any]) -> dict[str, Any]:
    """boto3 wants PascalCase operator names (``Eq``, ``Gte``)."""
    return {field: {op[0].upper() + op[1:]: v for op, v in cond.items()} for field, cond in criterion.items()}


def _source(url: str | None, db: str | None, key: str | None, secret: str | None, create: bool = False) -> Any:
    return _Remote(url, key, secret) if url else _Direct(db, create)


def _require_known(source: Any, ids: list[str]) -> list[dict[str, Any]]:
    found = source.get(ids)
    missing = sorted(set(ids) - {f["id"] for f in found})
    if missing:
        raise CliError(f"no finding with id {', '.join(missing)}")
    return found


@app.command("list")
@guarded("findings list")
def list_findings(
    url: UrlOption = None,
    db: DbOption = None,
    access_key: KeyOption = None,
    secret_key: SecretOption = None,
    type: Annotated[str | None, typer.Option(help="Only this finding type.")] = None,
    min_severity: Annotated[
        str, typer.Option(help="Only findings at least this severe: low, medium, high, critical or 0-10.")
    ] = "0",
    archived: Annotated[bool, typer.Option(help="Include archived findings.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    create: CreateOption = False,
) -> None:
    """One line per finding: id, severity, type, cluster, count, last seen."""
    from kubeguard.cli.scan import severity_option

    floor = severity_option("--min-severity", min_severity)
    criterion: dict[str, Any] = {}
    if type:
        criterion["type"] = {"eq": [type]}
    if floor:
        criterion["severity"] = {"gte": floor}
    if not archived:
        criterion["service.archived"] = {"eq": ["false"]}
    for finding in _source(url, db, access_key, secret_key, create).list(criterion, limit):
        service = finding.get("service") or {}
        cluster = finding["resource"].get("eksClusterDetails") or {}
        typer.echo(
            f"{finding['id']}  {float(finding['severity']):4.1f}  {finding['type']}  {cluster.get('name', '')}  "
            f"x{service.get('count', '')}  {service.get('eventLastSeen', '')}"
        )


@app.command()
@guarded("findings show")
def show(
    finding_ids: Annotated[list[str], typer.Argument(help="Finding ids.")],
    url: UrlOption = None,
    db: DbOption = None,
    access_key: KeyOption = None,
    secret_key: SecretOption = None,
) -> None:
    """Print findings as JSON (GetFindings' camelCase wire form)."""
    import orjson

    found = _require_known(_source(url, db, access_key, secret_key), finding_ids)
    typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


@app.command()
@guarded("findings archive")
def archive(
    finding_ids: Annotated[list[str], typer.Argument(help="Finding ids.")],
    url: UrlOption = None,
    db: DbOption = None,
    access_key: KeyOption = None,
    secret_key: SecretOption = None,
) -> None:
    """Archive findings (the analyst's "done")."""
    source = _source(url, db, access_key, secret_key)
    _require_known(source, finding_ids)
    source.archive(finding_ids)
    typer.echo(f"archived {len(finding_ids)} finding(s)")

