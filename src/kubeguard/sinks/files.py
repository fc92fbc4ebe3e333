"""Local sinks: standard output and an append-only JSONL file (one event per line)."""

from __future__ import annotations

import sys
from pathlib import Path

from kubeguard.sinks.delivery import Item, Renderer


class StdoutDestination:
    batch_size = 100

    def __init__(self, renderer: Renderer, name: str = "stdout") -> None:
        self.name = name
        self.renderer = renderer

    def deliver(self, items: list[Item]) -> None:
        sys.stdout.buffer.write(b"".join(self.renderer.body(item) + b"\n" for item in items))
        sys.stdout.buffer.flush()

    def close(self) -> None:
        pass


class JsonlFileDestination:
    """The file is opened per batch, so log rotation just works."""

    batch_size = 100

    def __init__(self, path: str, renderer: Renderer, name: str = "") -> None:
        self.path = Path(path)
        self.name = name or f"file:{self.path}"
        self.renderer = renderer

    def deliver(self, items: list[Item]) -> None:
        with self.path.open("ab") as handle:
            handle.write(b"".join(self.renderer.body(item) + b"\n" for item in items))

    def close(self) -> None:
        pass
