"""The one error path of every command: a single line on stderr, a documented exit code.

Commands raise :class:`CliError` (or :class:`UsageError`) with a message that names the file, URL or option
and says what to do. Anything else that escapes a command is reported the same way, as one line with the
exception's type, so a user never reads a traceback unless they ask for it with ``kubeguard --debug``.

Exit codes: 0 done, 1 a runtime failure (a service unreachable, a write that failed), 2 a usage error (a
missing file, an unknown format, a bad option value), 3 a ``--fail-on`` threshold was reached.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3

#: Set by ``kubeguard --debug``: show the traceback after the one-line message.
DEBUG = False

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """A failure the user can act on; ``code`` is the process exit status."""

    code = EXIT_RUNTIME

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(CliError):
    """The command line or a file it names is wrong: exit 2."""

    code = EXIT_USAGE


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception that reached the command line."""
    if isinstance(exc, CliError):
        return _one_line(str(exc)), exc.code
    from kubeguard.extras import MissingExtra, missing_extra

    if isinstance(exc, MissingExtra):
        return str(exc), EXIT_RUNTIME
    if isinstance(exc, ModuleNotFoundError) and (extra := missing_extra(exc)) is not None:
        return str(extra), EXIT_RUNTIME
    if isinstance(exc, FileNotFoundError):
        name = exc.filename or str(exc)
        return f"no such file or directory: {name}", EXIT_USAGE
    if isinstance(exc, IsADirectoryError):
        return f"is a directory, expected a file: {exc.filename}", EXIT_USAGE
    if isinstance(exc, NotADirectoryError):
        return f"not a directory: {exc.filename}", EXIT_USAGE
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename}", EXIT_RUNTIME
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}", EXIT_RUNTIME
    detail = _one_line(str(exc)) or "no detail"
    return f"{type(exc).__name__}: {detail}", EXIT_RUNTIME


def report(command: str, exc: BaseException) -> int:
    """Print ``kubeguard COMMAND: error: MESSAGE`` (and the traceback under --debug); the exit code."""
    message, code = describe(exc)
    prefix = f"kubeguard {command}".strip()
    print(f"{prefix}: error: {message}", file=sys.stderr)
    if DEBUG:
        traceback.print_exception(exc, file=sys.stderr)
    return code


def guarded(command: str) -> Callable[[F], F]:
    """Decorate a typer command so that every failure leaves through :func:`report`."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except (typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt, SystemExit):
                raise  # typer reports its own usage errors and exits
            except Exception as exc:  # noqa: BLE001 - the one place every failure is reported
                raise typer.Exit(report(command, exc)) from exc

        return wrapper  # type: ignore[return-value]

    return decorate
