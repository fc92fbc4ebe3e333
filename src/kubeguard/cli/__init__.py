"""The ``kubeguard`` command line: one typer app, one module per command family beside this one.

Each command module imports only typer and the standard library at import time and loads the rest of
kubeguard inside the command, so ``kubeguard --help`` and a small ``scan`` start quickly. Every command
reports failures through :mod:`kubeguard.cli.errors`: one line on stderr and a documented exit code.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kubeguard.cli import errors

app = typer.Typer(
    name="kubeguard",
    help="Threat detection for Kubernetes audit logs, with GuardDuty-compatible findings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"kubeguard {version('kubeguard')}")
        except PackageNotFoundError:
            typer.echo("kubeguard (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback behind an error.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Threat detection for Kubernetes audit logs, with GuardDuty-compatible findings."""
    errors.DEBUG = debug


def _register() -> None:
    from kubeguard.cli import findings, intel, scan, serve, simulate, worker

    app.command("scan")(scan.scan)
    app.command("serve")(serve.serve_command)
    app.command("worker")(worker.worker_command)
    app.command("simulate", help="Generate realistic audit logs with labelled attack scenarios.")(simulate.simulate)
    app.add_typer(intel.app, name="intel")
    app.add_typer(findings.app, name="findings", help="List, show and archive stored findings.")


_register()


def main() -> None:
    app()
