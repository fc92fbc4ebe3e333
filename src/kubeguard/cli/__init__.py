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
    # Plain help and usage errors: typer's rich formatter imports rich.markdown, markdown-it and rich's
    # traceback module (about 0.2 s), which alone would break the start-up budget of ``kubeguard --help``.
    rich_markup_mode=None,
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
    from kubeguard.cli import findings, intel, investigate, rules, scan, serve, simulate, worker

    app.command("scan")(scan.scan)
    app.command("serve")(serve.serve_command)
    app.command("worker")(worker.worker_command)
    app.command("simulate", help="Generate realistic audit logs with labelled attack scenarios.")(simulate.simulate)
    app.command("investigate")(investigate.investigate_command)
    app.add_typer(intel.app, name="intel")
    app.add_typer(findings.app, name="findings", help="List, show and archive stored findings.")
    app.add_typer(rules.app, name="rules", help="Test and list Sigma detection rules.")


_register()


def main() -> None:
    app()
