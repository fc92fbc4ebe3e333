"""The ``kubeguard`` command line: one typer app, one module per command family beside this one.

Each command module imports only typer and the standard library at import time and loads the rest of
kubeguard inside the command, so ``kubeguard --help`` and a small ``scan`` start quickly. Every command
reports failures through :mod:`kubeguard.cli.errors`: one line on stderr and a documented exit code.

``kubeguard COMMAND ...`` builds an app holding that command alone: importing the other command modules
and having typer turn every command's signature into click parameters would cost tens of milliseconds a
run (issue 14's start-up budget). ``--help``, no command or a name that is not a command get every
command, so the listing and click's "No such command" are unchanged. ``kubeguard.cli.app`` (what tests
and ``python -m kubeguard.serve`` use) is the full app, built on first access.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubeguard.cli import errors

#: Every command in the order ``--help`` lists them: name -> (module, attribute, is a sub-app, help).
COMMANDS: dict[str, tuple[str, str, bool, str | None]] = {
    "scan": ("scan", "scan", False, None),
    "serve": ("serve", "serve_command", False, None),
    "worker": ("worker", "worker_command", False, None),
    "simulate": ("simulate", "simulate", False, "Generate realistic audit logs with labelled attack scenarios."),
    "investigate": ("investigate", "investigate_command", False, None),
    "intel": ("intel", "app", True, None),
    "findings": ("findings", "app", True, "List, show and archive stored findings."),
    "rules": ("rules", "app", True, "Test and list Sigma detection rules."),
}
#: The root's own options, all flags: the first argument that is none of them names the command.
ROOT_FLAGS = frozenset({"--debug", "--version", "--help"})

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"kubeguard {version('kubeguard')}")
        except PackageNotFoundError:
            typer.echo("kubeguard (not installed)")
        raise typer.Exit()


def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback behind an error.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Threat detection for Kubernetes audit logs, with GuardDuty-compatible findings."""
    errors.DEBUG = debug


def build_app(names: list[str] | tuple[str, ...] = tuple(COMMANDS)) -> typer.Typer:
    """The root app with the commands ``names`` (every command by default), in :data:`COMMANDS` order."""
    import importlib

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
    app.callback()(_root)
    for name, (module_name, attribute, is_group, help_text) in COMMANDS.items():
        if name not in names:
            continue
        target = getattr(importlib.import_module(f"kubeguard.cli.{module_name}"), attribute)
        if is_group:  # help=None would blank the sub-app's own help; leave typer's default instead
            app.add_typer(target, name=name, **({"help": help_text} if help_text else {}))
        else:
            app.command(name, help=help_text)(target)
    return app


def command_named(argv: list[str]) -> str | None:
    """The command ``argv`` (the arguments after the program name) runs, if it names a known one."""
    for argument in argv:
        if argument in ROOT_FLAGS:
            continue
        return argument if argument in COMMANDS else None
    return None


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """``kubeguard.cli.app``: every command, built on first use (``main`` builds only what it runs)."""
    global _full_app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _full_app is None:
        _full_app = build_app()
    return _full_app


def main() -> None:
    import sys

    command = command_named(sys.argv[1:])
    try:
        build_app((command,) if command else tuple(COMMANDS))()
    finally:
        if command == "scan":
            _skip_the_last_collection()


def _skip_the_last_collection() -> None:
    """Freeze what is alive as a scan ends: the interpreter's collection at exit walks every object still
    alive (the baselines, the detectors' state) only for the process to end (callgrind: 45M instructions,
    about 15 ms, of a 40,000-event scan); frozen, they are skipped. A scan has written and closed its
    output and summary by then, so no finaliser is left that matters. Only the console script does this:
    a test that runs the command in its own process keeps collecting as before."""
    import gc

    gc.freeze()
