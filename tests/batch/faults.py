"""Fail a chosen statement of an engine, or its commit, once: the failures the batch tests walk through."""

from __future__ import annotations

from sqlalchemy import event


class InjectedFault(RuntimeError):
    pass


class Faults:
    """Counts the statements of the engine and fails the chosen one (or the commit) once."""

    def __init__(self, engine) -> None:
        self.statements = 0
        self.fail_at: int | None = None
        self.fail_commit = False
        self.fired: list[str] = []
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def arm(self, *, statement: int | None = None, commit: bool = False) -> None:
        self.statements, self.fail_at, self.fail_commit = 0, statement, commit

    def _statement(self, *_args) -> None:
        if self.fail_at is not None and self.statements == self.fail_at:
            self.fail_at = None
            self.fired.append("statement")
            raise InjectedFault(f"statement {self.statements} failed")
        self.statements += 1

    def _commit(self, _conn) -> None:
        if self.fail_commit:
            self.fail_commit = False
            self.fired.append("commit")
            raise InjectedFault("commit failed")
