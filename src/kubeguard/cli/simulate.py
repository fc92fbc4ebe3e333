"""``kubeguard simulate``: write simulated audit logs and their attack labels to files.

With one cluster the events go to ``--out`` as given. With several, each cluster gets its own file,
named by inserting the cluster before the suffix (``audit.jsonl.gz`` becomes
``audit.prod-use1.jsonl.gz``), because audit events carry no cluster field and a real pipeline learns
the cluster from where the log came from. Labels (JSONL, one scenario a line) name the cluster.
"""

from __future__ import annotations

import gzip
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from kubeguard.cli.errors import guarded

if TYPE_CHECKING:
    from rich.console import Console

    from kubeguard.sim.simulator import Simulator

app = typer.Typer(add_completion=False, help="Generate realistic Kubernetes audit logs with labelled attacks.")


def cluster_path(out: Path, cluster: str, many: bool) -> Path:
    """Where one cluster's events go: ``out`` itself, or ``out`` with the cluster before its suffixes."""
    if not many:
        return out
    suffixes = "".join(out.suffixes)
    stem = out.name[: len(out.name) - len(suffixes)] if suffixes else out.name
    return out.with_name(f"{stem}.{cluster}{suffixes}")


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "wb", compresslevel=5)
    return path.open("wb")


@app.command()
@guarded("simulate")
def simulate(
    out: Path = typer.Option(Path("audit.jsonl.gz"), "--out", "-o", help="Event file (JSONL; .gz compresses); "
                             "'-' writes one cluster to stdout."),
    labels: Path | None = typer.Option(None, "--labels", help="Ground-truth file (JSONL, one attack a line)."),
    duration: str = typer.Option("14d", help="Simulated span: 14d, 36h, 1d12h..."),
    start: str = typer.Option("2026-01-05T00:00:00Z", help="Start of simulated time (ISO 8601)."),
    seed: int = typer.Option(0, help="Same seed, same bytes."),
    clusters: int = typer.Option(1, min=1, help="Number of clusters."),
    attacks: str = typer.Option("none", help="all, none, guardduty-tester, or scenario names separated by commas."),
    learning: str = typer.Option("7d", help="Simulated time before the first attack."),
    scale: float = typer.Option(1.0, min=0.01, help="Pace of machine traffic (leases, status, syncs)."),
) -> None:
    """Simulate clusters' audit logs over a span of event time, with attacks after a learning period."""
    import orjson
    from rich.console import Console

    from kubeguard.sim.clock import parse_duration, parse_start
    from kubeguard.sim.simulator import SimConfig, Simulator, cluster_names

    try:
        config = SimConfig(seed=seed, start=parse_start(start), duration=parse_duration(duration),
                           clusters=cluster_names(clusters), attacks=attacks.split(","),
                           scale=scale, learning=parse_duration(learning))
        simulator = Simulator(config)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    if str(out) == "-" and clusters > 1:
        raise typer.BadParameter("stdout takes one cluster; give --out a file name")
    console = Console(stderr=True)
    written = _write(simulator, out, console)
    if labels is not None:
        labels.write_bytes(b"".join(orjson.dumps(label) + b"\n" for label in simulator.labels))
    console.print(f"{written:,} events, {len(simulator.labels)} attack scenarios"
                  + (f", labels in {labels}" if labels else ""))


def _write(simulator: Simulator, out: Path, console: Console) -> int:
    import orjson
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from kubeguard.sim.clock import HOUR

    names = [world.cluster.name for world in simulator.worlds]
    total_hours = max(1, (simulator.end - simulator.start) // HOUR)
    written = 0
    with ExitStack() as files, Progress(TextColumn("{task.description}"), BarColumn(),
                                        TextColumn("{task.completed:,.0f}/{task.total:,.0f} h"),
                                        TimeRemainingColumn(), console=console,
                                        disable=not console.is_terminal) as progress:
        if str(out) == "-":
            sinks = {names[0]: sys.stdout.buffer}
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            sinks = {name: files.enter_context(_open(cluster_path(out, name, len(names) > 1))) for name in names}
        task = progress.add_task("simulating", total=total_hours)
        dumps = orjson.dumps
        for cluster, event in simulator.stream():
            sinks[cluster].write(dumps(event) + b"\n")
            written += 1
            if written % 20_000 == 0:
                stamp = event["stageTimestamp"]
                progress.update(task, completed=(_hours_since(simulator.start, stamp)))
        progress.update(task, completed=total_hours)
    return written


def _hours_since(start_us: int, stamp: str) -> int:
    from kubeguard.sim.clock import HOUR, parse_start

    return (parse_start(stamp).timestamp() * 1_000_000 - start_us) // HOUR


if __name__ == "__main__":
    app()
