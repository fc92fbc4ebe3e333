"""``kubeguard rules``: try Sigma rules on a log, and list the rules kubeguard would load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kubeguard.cli.errors import UsageError, guarded

app = typer.Typer(no_args_is_help=True, help="Test and list Sigma detection rules (kubernetes/audit).")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=200)


@app.command("test")
@guarded("rules test")
def test_command(
    rule: Annotated[Path, typer.Argument(help="A Sigma rule file or a directory of rules.")],
    logs: Annotated[list[str], typer.Argument(help="Audit log files or directories; - reads stdin.")],
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    cluster: Annotated[str | None, typer.Option(help="Cluster name (else from the envelope, else default).")] = None,
) -> None:
    """Show every event RULE matches in LOGS, and the findings it would raise."""
    import orjson
    from rich.table import Table

    from kubeguard.audit.decode import UnknownFormatError
    from kubeguard.detectors.rules import RuleLoadError
    from kubeguard.detectors.rules.trial import trial

    if output_format not in ("table", "json"):
        raise UsageError(f"unknown --format {output_format!r}; choose table or json")
    try:
        result = trial([rule], logs, cluster=cluster)
    except (RuleLoadError, UnknownFormatError) as error:
        raise UsageError(str(error)) from error
    if output_format == "json":
        document = {
            "rules": [{"ruleId": r.rule_id, "name": r.title, "type": r.finding_type} for r in result.rules],
            "matches": [m.summary() for m in result.matches],
            "findings": result.findings,
        }
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{len(result.matches)} matching events")
    for column in ("Rule", "Time", "User", "Verb", "Resource", "Namespace", "Name", "Code"):
        table.add_column(column, overflow="fold")
    for match in result.matches:
        row = match.summary()
        table.add_row(row["rule"], row["time"], row["user"], row["verb"], row["resource"], row["namespace"],
                      row["name"], str(row["code"] or ""))
    _console().print(table)
    err = _console(stderr=True)
    err.print(f"{result.events:,} events read ({result.counted:,} counted), {result.rejected:,} rejected; "
              f"{len(result.findings)} findings", highlight=False, soft_wrap=True)
    for finding in result.findings:
        user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
        err.print(f"  {finding['service']['count']:>5}  {finding['type']}  ({user})", highlight=False, soft_wrap=True)


@app.command("list")
@guarded("rules list")
def list_command(
    paths: Annotated[list[Path], typer.Argument(help="Sigma rule files or directories.")],
) -> None:
    """Load rules as scan and serve would, and list them (exit 2 on the first that cannot be loaded)."""
    from rich.table import Table

    from kubeguard.detectors.rules.load import RuleLoadError, load_rules

    try:
        rules = load_rules(paths)
    except RuleLoadError as error:
        raise UsageError(str(error)) from error
    table = Table(title=f"{len(rules)} rules")
    for column in ("Rule id", "Type", "Level", "Technique", "Source"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        table.add_row(rule.rule_id, rule.finding_type, rule.level, rule.technique, rule.source)
    _console().print(table)
