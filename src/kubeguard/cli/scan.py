"""``kubeguard scan``: run the pipeline over audit logs and print the findings."""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kubeguard.cli.errors import EXIT_FINDINGS, EXIT_RUNTIME, CliError, UsageError, guarded

if TYPE_CHECKING:
    from kubeguard.scan import ScanResult

#: The input formats ``--input-format`` takes (``kubeguard.audit.decode.FORMATS``, repeated here so that
#: the help text costs no import; a test checks that the two agree).
INPUT_FORMATS = ("auto", "native", "cloudwatch", "gke", "aks")
#: ``guardduty`` ... ``text`` are the finding formats every sink shares (``kubeguard.findings.formats.FORMATS``,
#: repeated for the same reason; one document or line per finding).
OUTPUT_FORMATS = ("table", "json", "jsonl", "guardduty", "eventbridge", "asff", "ocsf", "text")


class _PlainStderr:
    """What a scan prints on stderr when it is not a terminal: the same lines, without rich's markup, its
    wrapping at 80 columns (which split the summary line in logs) or its import (about 25 ms of start-up)."""

    is_terminal = False
    _MARKUP = re.compile(r"\[(?:bold|yellow|/)\]")

    def print(self, text: str, highlight: bool = False) -> None:
        sys.stderr.write(self._MARKUP.sub("", text) + "\n")


def _stderr() -> Any:
    if not sys.stderr.isatty():
        return _PlainStderr()
    from rich.console import Console

    return Console(stderr=True)


def severity_option(option: str, text: str) -> float:
    """A severity option's value (``high`` or ``7``), or a usage error naming the option."""
    from kubeguard import severity

    try:
        return severity.parse_threshold(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: use low, medium, high, critical or a number from 0 to 10") from None


def _check_output(output: Path | None) -> None:
    if output is None:
        return
    if output.is_dir():
        raise UsageError(f"--output {output} is a directory; name a file")
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: directory {output.parent} does not exist")


def _check_paths(paths: list[str]) -> None:
    from kubeguard.audit.decode import expand_path

    for path in paths:
        if path != "-":
            expand_path(Path(path))


@guarded("scan")
def scan(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Audit log files or directories; - reads stdin.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(OUTPUT_FORMATS)} (the last five: one per line).")
    ] = "table",
    cluster: Annotated[str | None, typer.Option(help="Cluster name (else from the envelope, else default).")] = None,
    input_format: Annotated[str, typer.Option(help=f"One of: {', '.join(INPUT_FORMATS)}.")] = "auto",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write findings here.")] = None,
    min_severity: Annotated[str, typer.Option(help="Hide findings below: low, medium, high, critical or 0-10.")] = "0",
    fail_on: Annotated[str | None, typer.Option(help="Exit 3 if a finding at or above this severity exists.")] = None,
    state: Annotated[Path | None, typer.Option(help="Keep detector state (first-seen, baselines) here.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    threat_list: Annotated[
        list[str] | None, typer.Option(help="Custom threat list PATH_OR_URL[:FORMAT]; repeatable.")
    ] = None,
    malicious_list: Annotated[
        list[str] | None,
        typer.Option(help="Known-malicious IP list (MaliciousIPCaller) PATH_OR_URL[:FORMAT]; repeatable."),
    ] = None,
    trusted_list: Annotated[
        list[str] | None, typer.Option(help="Trusted IP list PATH_OR_URL[:FORMAT]; repeatable.")
    ] = None,
    tor_exits: Annotated[list[str] | None, typer.Option(help="Tor exit list file; repeatable.")] = None,
    no_default_feeds: Annotated[
        bool, typer.Option("--no-default-feeds", help="Ignore feeds cached by `kubeguard intel update`.")
    ] = False,
    learning_days: Annotated[
        float | None, typer.Option(help="Anomaly learning period per cluster, in days of event time (default 7).")
    ] = None,
    min_principal_events: Annotated[
        int | None, typer.Option(help="History a principal needs before its anomalies are judged (default 50).")
    ] = None,
    no_anomaly: Annotated[bool, typer.Option("--no-anomaly", help="Turn the AnomalousBehavior detectors off.")] = False,
    rules: Annotated[
        list[str] | None, typer.Option("--rules", help="Sigma rule file or directory (kubernetes/audit); repeatable.")
    ] = None,
    pack: Annotated[
        list[str] | None, typer.Option(help="Opt-in detection pack to add (audit-trail); repeatable.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    db: Annotated[
        str | None,
        typer.Option(help="Also keep the activity history and findings in this store (file or URL) for the console."),
    ] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Exit 0 even when no audit event could be read.")
    ] = False,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Read cloudwatch:LOG_GROUP (or file:PATH) instead of, or besides, PATHS; repeatable."),
    ] = None,
    since: Annotated[str, typer.Option(help="With --source: from this far back (24h, 7d) or this ISO time.")] = "1h",
    until: Annotated[str | None, typer.Option(help="With --source: up to this far back or ISO time.")] = None,
) -> None:
    """Scan audit logs and print GuardDuty-format findings."""
    import msgspec

    from kubeguard.audit.decode import FORMATS, UnknownFormatError
    from kubeguard.config import ConfigError, DetectorSettings, load_settings
    from kubeguard.detectors.rules import RuleLoadError
    from kubeguard.intel.formats import ListError
    from kubeguard.intel.sources import SourceError, parse_list_spec

    if output_format not in OUTPUT_FORMATS:
        raise UsageError(f"unknown --format {output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if input_format not in FORMATS:
        raise UsageError(f"unknown --input-format {input_format!r}; choose one of {', '.join(FORMATS)}")
    sources = _sources(source or [], since, until, cluster)
    # Only a --source read can fail this way; its module imports SQLAlchemy, which a file scan never needs.
    read_failed: tuple[type[Exception], ...] = ()
    if sources is not None:
        from kubeguard.sources.cloudwatch import ReadFailed

        read_failed = (ReadFailed,)
    paths = [*(paths or []), *(sources.paths if sources else [])]
    if not paths and sources is None:
        raise UsageError("name audit log files or directories, or a --source")
    floor = severity_option("--min-severity", min_severity)
    fail_floor = severity_option("--fail-on", fail_on) if fail_on else None
    _check_output(output)
    if state is not None and state.is_dir():
        raise UsageError(f"--state {state} is a directory; name a file (it is created if missing)")
    try:
        settings = load_settings(config)
        intel = settings.intel
        intel.threat_lists = [*intel.threat_lists, *(threat_list or [])]
        intel.malicious_lists = [*intel.malicious_lists, *(malicious_list or [])]
        intel.trusted_lists = [*intel.trusted_lists, *(trusted_list or [])]
        intel.tor_exits = [*intel.tor_exits, *(tor_exits or [])]
        intel.use_default_feeds = intel.use_default_feeds and not no_default_feeds
        anomaly = settings.anomaly
        anomaly.enabled = anomaly.enabled and not no_anomaly
        if learning_days is not None:
            anomaly.learning_days = learning_days
        if min_principal_events is not None:
            anomaly.min_principal_events = min_principal_events
        settings.rules.paths = [*settings.rules.paths, *(rules or [])]
        if pack:
            settings.detectors = DetectorSettings(packs=[*settings.detectors.packs, *pack])
        for spec in (*intel.threat_lists, *intel.malicious_lists, *intel.trusted_lists):
            parse_list_spec(spec)
        _check_paths(paths)
    except (ValueError, ConfigError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(levelname)s %(message)s")
    # Rejects are summarised once at the end (first few with file and line, then a count), not logged too.
    logging.getLogger("kubeguard.audit.decode").setLevel(logging.ERROR)
    try:
        result = _scan_with_progress(
            paths, settings, cluster, input_format, state, show=not quiet, sources=sources, db=db
        )
    except (UnknownFormatError, FileNotFoundError, SourceError, ListError, RuleLoadError) as error:
        raise UsageError(str(error)) from error
    except read_failed as error:
        raise CliError(str(error), code=EXIT_RUNTIME) from error
    except msgspec.MsgspecError as error:
        raise UsageError(f"--state {state}: not a kubeguard state file ({error})") from error
    inputs = [*paths, *(source or [])]
    if result.stats.events == 0 and not allow_empty:
        first = f"; first: {result.rejects[0]}" if result.rejects else ""
        raise CliError(
            f"no audit event could be read from {', '.join(inputs)} ({result.rejected:,} records rejected{first}); "
            "check --input-format, or pass --allow-empty",
            code=EXIT_RUNTIME,
        )
    shown = [f for f in result.findings if f["severity"] >= floor]
    _emit(shown, output_format, output)
    if not quiet:
        _summary(result)
        for line in sources.summary() if sources else ():
            _stderr().print(f"  source {line}", highlight=False)
    if fail_floor is not None and any(f["severity"] >= fail_floor for f in result.findings):
        raise typer.Exit(EXIT_FINDINGS)


def _sources(texts: list[str], since: str, until: str | None, cluster: str | None) -> Any:
    """The ``--source`` readers of a scan (None without any); a bad spec or time is a usage error."""
    if not texts:
        return None
    from kubeguard.sources.scan import SourceScan
    from kubeguard.sources.spec import SourceSpecError

    try:
        return SourceScan(texts, since, until, cluster)
    except SourceSpecError as error:
        raise UsageError(str(error)) from error


def _scan_with_progress(
    paths: list[str],
    settings: Any,
    cluster: str | None,
    input_format: str,
    state: Path | None,
    *,
    show: bool,
    sources: Any = None,
    db: str | None = None,
) -> ScanResult:
    from kubeguard.scan import run_scan

    history = None
    if db:  # SQLAlchemy is imported only when history is kept
        from kubeguard.store.database import url_from_option

        history = url_from_option(db)
    fmt = None if input_format == "auto" else input_format
    events = sources.events() if sources is not None and sources.specs else None
    options = {"cluster": cluster, "input_format": fmt, "state_path": state, "events": events, "history_url": history}
    if not show:  # --quiet: no console at all, so rich stays unimported
        return run_scan(paths, settings, **options)
    err = _stderr()
    if not err.is_terminal:
        return run_scan(paths, settings, **options)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]scanning"),
        BarColumn(bar_width=None),
        TextColumn("{task.completed:,} events · {task.fields[rate]:,.0f}/s · {task.fields[findings]} findings"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("scan", total=None, rate=0.0, findings=0)
        started = progress.get_time()

        def update(events: int, findings: int) -> None:
            elapsed = max(progress.get_time() - started, 1e-6)
            progress.update(task, completed=events, rate=events / elapsed, findings=findings)

        return run_scan(
            paths,
            settings,
            cluster=cluster,
            input_format=fmt,
            state_path=state,
            progress=update,
            progress_every=5000 if events is None else 100,
            events=events,
            history_url=history,
        )


def _emit(findings: list[dict[str, Any]], output_format: str, output: Path | None) -> None:
    import orjson

    if output_format == "json":
        data = orjson.dumps({"findings": findings}, option=orjson.OPT_INDENT_2) + b"\n"
    elif output_format == "jsonl":
        data = b"".join(orjson.dumps(f) + b"\n" for f in findings)
    elif output_format != "table":
        from kubeguard.findings.formats import encode

        data = b"".join(encode(output_format, f) + b"\n" for f in findings)
    else:
        _table(findings, output)
        return
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)


def _table(findings: list[dict[str, Any]], output: Path | None) -> None:
    """Attack sequences first, each with its member findings under it (marked └); then the rest by severity."""
    from rich.console import Console
    from rich.table import Table

    from kubeguard.correlate.stage import table_order

    table = Table(title=f"{len(findings)} findings", show_lines=False)
    for column in ("Severity", "Type", "User", "Namespace", "Target", "Source IP", "Count"):
        table.add_column(column, overflow="fold")
    for finding, depth in table_order(findings):
        table.add_row(*_table_row(finding, depth))
    if output is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
        console.print(table)
    else:
        with output.open("w") as handle:
            Console(file=handle, width=200).print(table)


def _table_row(finding: dict[str, Any], depth: int) -> tuple[str, ...]:
    from kubeguard import severity
    from kubeguard.correlate.sequences import SEQUENCE_TYPE

    service = finding["service"]
    user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"].get("username", "")
    if finding["type"] == SEQUENCE_TYPE:
        sequence = service["detection"]["sequence"]
        ips = [e["id"] for e in sequence.get("endpoints", [])]
        return (severity.label(finding["severity"]), f"[bold]{finding['type']}[/]", user, "",
                f"{len(sequence['signals'])} signals", ", ".join(ips[:3]), str(service["count"]))
    call = service.get("action", {}).get("kubernetesApiCallAction", {})
    workload = finding["resource"]["kubernetesDetails"].get("kubernetesWorkloadDetails")
    target = workload["name"] if workload else call.get("resourceName") or call.get("requestUri", "")
    return (
        ("└ " if depth else "") + severity.label(finding["severity"]),
        finding["type"],
        user,
        call.get("namespace", ""),
        target,
        (call.get("sourceIPs") or [""])[0],
        str(service["count"]),
    )


def _summary(result: ScanResult) -> None:
    from kubeguard import severity

    err = _stderr()
    stats = result.stats
    err.print(
        f"[bold]{stats.events:,}[/] events read ({stats.counted:,} counted, {stats.duplicates:,} duplicates, "
        f"{stats.other_stages:,} other stages), [bold]{result.rejected:,}[/] records rejected, "
        f"[bold]{len(result.findings)}[/] findings in {result.seconds:.2f}s"
    )
    for reject in result.rejects[:5]:
        err.print(f"  rejected {reject}")
    if result.rejected > 5:
        err.print(f"  … and {result.rejected - 5:,} more rejected records")
    by_severity = Counter(severity.label(f["severity"]) for f in result.findings)
    if by_severity:
        err.print("  by severity: " + ", ".join(f"{k} {v}" for k, v in sorted(by_severity.items())))
    for finding_type, count in sorted(result.by_type().items()):
        err.print(f"  {count:>4}  {finding_type}")
    for detector, errors in result.detector_errors.items():
        err.print(f"[yellow]  detector {detector} failed on {errors} events (see log)[/]")
