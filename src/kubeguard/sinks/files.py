"""Local sinks: standard output and an append-only JSONL file (one event per line)."""

from __future__ import annotations

import sys
from pathlib import Path

from kubeguard.sinks.delivery import Item, SinkEnv
from kubeguard.sinks.options import JsonlOptions, StdoutOptions


class StdoutDestination:
    batch_size = 100

    def __init__(self, options: StdoutOptions, env: SinkEnv) -> None:
        self.name = options.name or "stdout"
        self.renderer = env.renderer

    def deliver(self, items: list[Item]) -> None:
        sys.stdout.buffer.write(b"".join(self.renderer.body(item) + b"\n" for item in items))
        sys.stdout.buffer.flush()

    def close(self) -> None:
        pass


class JsonlFileDestination:
    """The file is opened per batch, so log rotation just works."""

    batch_size = 100

    def __init__(self, options: JsonlOptions, env: SinkEnv) -> None:
        self.path = Path(options.path)
        self.name = options.name or f"file:{self.path}"
        self.renderer = env.renderer

    def deliver(self, items: list[Item]) -> None:
        with self.path.open("ab") as handle:
            handle.write(b"".join(self.renderer.body(item) + b"\n" for item in items))

    def close(self) -> None:
        pass
