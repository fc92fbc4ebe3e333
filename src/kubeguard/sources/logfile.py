"""Follow a kube-apiserver ``--audit-log-path`` file across rotation, resuming at a stored position.

Self-managed clusters (kubeadm, k3s, kops) write one JSON Event per line to a file that is rotated in one
of three ways, all handled here without losing or repeating a line:

* **rename and create** (logrotate's default) and the API server's own ``--audit-log-maxsize`` rotation
  (it renames ``audit.log`` to ``audit-<time>.log`` and opens a new file): the open descriptor still
  reaches the renamed file, so its remainder is read before the new file is opened. After a restart the
  renamed file is found again by its (device, inode) among the files of the directory.
* **copytruncate**: the file keeps its inode but restarts from zero. The source notices that the bytes
  just before its offset are no longer the ones it read, finds the copy (the sibling holding those bytes
  at that offset), reads the copy's remainder, then reads the truncated file from its start. (Lines the
  API server wrote between logrotate's copy and its truncate are lost by logrotate itself.)

The position (device, inode, offset, and the last bytes before the offset that prove it) is committed in
the transaction that spools the lines it covers.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubeguard.sources.health import SourceHealth
from kubeguard.sources.loop import LiveSource
from kubeguard.sources.records import REJECT_TOO_LONG, read_event
from kubeguard.sources.spec import SourceSpec
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store import source_cursors

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
#: An audit line longer than this is rejected and skipped, never buffered.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: How many bytes before the offset are kept to recognise the same file content after a truncation.
TAIL_BYTES = 256
#: At most this many directory entries are examined when looking for a rotated file.
MAX_SIBLINGS = 2000
REJECT_ROTATED_AWAY = "rotated_away"
#: Rotated files compressed by logrotate are not followed (their content was read before compression).
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


@dataclass(slots=True)
class OpenFile:
    fd: int
    device: int
    inode: int
    offset: int
    tail: bytes
    label: str
    #: The file's modification time when it was opened: files appearing later are newer than it.
    opened_mtime_ns: int = 0

    def __post_init__(self) -> None:
        if not self.opened_mtime_ns:
            self.opened_mtime_ns = os.fstat(self.fd).st_mtime_ns

    def close(self) -> None:
        os.close(self.fd)


class LogFileSource(LiveSource):
    def __init__(
        self,
        spec: SourceSpec,
        writer: SpoolWriter,
        engine: Any,
        *,
        health: SourceHealth | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(spec)
        self.spec = spec
        self.path = Path(spec.target)
        self.writer = writer
        self.engine = engine
        self.max_line_bytes = max_line_bytes
        self.health = health or SourceHealth(spec.name, spec.kind, spec.target, spec.cluster)
        self.current: OpenFile | None = None
        self._resumed = False
        #: When the file just finished was last written, while the file after it is not yet open.
        self._last_write_ns: int | None = None
        #: Files read to their end lately, by (device, inode): never taken for unread rotated files.
        self._finished: dict[tuple[int, int], None] = {}

    # -- running ----------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self.current is not None:
            self.current.close()
            self.current = None

    def advance(self) -> bool:
        if not self._resumed:
            self.resume()
            self._resumed = True
        return self.step()

    # -- position ---------------------------------------------------------------------------------

    def resume(self) -> None:
        """Reopen what the stored position names: the same file, its rotated self, or the new file."""
        position = source_cursors.load_position(self.engine, self.spec.name)
        if position is None:
            self.current = self._open_path(0)
            log.info("source %s: first start, reading %s from its start", self.spec.name, self.path)
            return
        device, inode, offset = int(position["device"]), int(position["inode"]), int(position["offset"])
        tail = bytes.fromhex(position.get("tail", ""))
        found = self._find_by_inode(device, inode)
        if found is None:
            log.warning(
                "source %s: the file read up to offset %d (inode %d) is gone; continuing with %s",
                self.spec.name, offset, inode, self.path,
            )
            self.health.read(0, Counter({REJECT_ROTATED_AWAY: 1}), None)
            self.current = self._open_path(0)
            return
        fd = os.open(found, os.O_RDONLY)
        self.current = OpenFile(fd, device, inode, offset, tail, str(found))
        if not self._tail_matches(self.current):
            self._recover_truncation(self.current)
        assert self.current is not None
        log.info("source %s: resuming %s at offset %d", self.spec.name, found, self.current.offset)

    def _open_path(self, offset: int) -> OpenFile | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self.health.set_state("waiting_for_file")
            return None
        info = os.fstat(fd)
        return OpenFile(fd, info.st_dev, info.st_ino, offset, b"", str(self.path))

    def _find_by_inode(self, device: int, inode: int) -> Path | None:
        for candidate in self._siblings():
            try:
                info = candidate.stat()
            except OSError:
                continue
            if info.st_dev == device and info.st_ino == inode:
                return candidate
        return None

    def _siblings(self) -> list[Path]:
        """The path itself first, then the other regular files of its directory (bounded)."""
        found = [self.path]
        try:
            with os.scandir(self.path.parent) as entries:
                for index, entry in enumerate(entries):
                    if index >= MAX_SIBLINGS:
                        break
                    if entry.name != self.path.name and entry.is_file(follow_symlinks=False):
                        found.append(Path(entry.path))
        except OSError:
            pass
        return found

    def _tail_matches(self, current: OpenFile) -> bool:
        if current.offset == 0:
            return True
        size = os.fstat(current.fd).st_size
        if size < current.offset:
            return False
        if not current.tail:
            return True
        return os.pread(current.fd, len(current.tail), current.offset - len(current.tail)) == current.tail

    def _recover_truncation(self, current: OpenFile) -> OpenFile:
        """Copytruncate: continue in the copy (read like a renamed file), else start the file over.

        The copy is followed exactly like a file renamed by rotation: its remainder is read and committed
        under its own (device, inode), and at its end the source moves to the start of ``path``.
        """
        copy = self._find_copy(current)
        if copy is None:
            log.warning(
                "source %s: %s was truncated and no copy holds the unread rest after offset %d",
                self.spec.name, current.label, current.offset,
            )
            self.health.read(0, Counter({REJECT_ROTATED_AWAY: 1}), None)
            current.offset, current.tail = 0, b""
            replacement = current
        else:
            log.info("source %s: %s was truncated; reading its rest from %s", self.spec.name, current.label, copy)
            fd = os.open(copy, os.O_RDONLY)
            info = os.fstat(fd)
            current.close()
            replacement = OpenFile(fd, info.st_dev, info.st_ino, current.offset, current.tail, str(copy))
        self.current = replacement
        self._commit_position(replacement)
        return replacement

    def _find_copy(self, current: OpenFile) -> Path | None:
        if not current.tail:
            return None
        for candidate in self._siblings()[1:]:
            if candidate.suffix in COMPRESSED:
                continue
            try:
                with candidate.open("rb") as handle:
                    info = os.fstat(handle.fileno())
                    if not stat.S_ISREG(info.st_mode) or info.st_ino == current.inode:
                        continue
                    if info.st_size < current.offset:
                        continue
                    handle.seek(current.offset - len(current.tail))
                    if handle.read(len(current.tail)) == current.tail:
                        return candidate
            except OSError:
                continue
        return None

    # -- reading ----------------------------------------------------------------------------------

    def step(self) -> bool:
        """Read one chunk of lines, or handle the end of the file; True when something was read."""
        if self.current is None:
            opened = self._open_path(0)
            if opened is None:
                return False
            if self._last_write_ns is not None:
                self._read_rotated_since(self._last_write_ns, opened)
                self._last_write_ns = None
            self.current = opened
            self._commit_position(opened)
        if not self._tail_matches(self.current):
            # Truncated (and perhaps refilled past our offset) since the last read: copytruncate.
            self._recover_truncation(self.current)
            return True
        if self.current.offset == 0 and self._read_unread_copies(self.current):
            return True
        if self._read_lines(self.current, final=False):
            return True
        return self._at_end(self.current)

    def _at_end(self, current: OpenFile) -> bool:
        """At the end of the open file: follow a rotation or a truncation, else report caught up."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            info = None
        if info is None or (info.st_dev, info.st_ino) != (current.device, current.inode):
            if info is None:
                self._caught_up(current)
                return False  # renamed, the new file not there yet: keep the old one until it is
            # Renamed away: the writer may have finished a last line there before switching.
            while self._read_lines(current, final=True):
                pass
            log.info("source %s: %s was rotated; following the new file", self.spec.name, current.label)
            self._last_write_ns = os.fstat(current.fd).st_mtime_ns
            self._finish(current)
            self.current = None
            return True
        if not self._tail_matches(current):
            self._recover_truncation(current)
            return True
        self._caught_up(current)
        return False

    def _read_unread_copies(self, current: OpenFile) -> bool:
        """Copytruncate of a file not read at all yet: its lines are only in the copy; read it first.

        With nothing read there are no bytes to recognise the copy by, so any file that appeared beside
        the path since it was opened, and was not read, is taken as such a copy. A copy is made before the
        truncation that follows it; files rotated after this one (if it was renamed since) were written
        after its last change, and are read after it.
        """
        try:
            at_path = os.stat(self.path)
            live = (at_path.st_dev, at_path.st_ino)
        except FileNotFoundError:
            live = None
        copies = self._unread_siblings(
            current.opened_mtime_ns, os.fstat(current.fd).st_mtime_ns, {(current.device, current.inode), live}
        )
        self._read_whole(copies, f"copied from {current.label} before it was read")
        if copies:
            self._commit_position(current)
        return bool(copies)

    def _read_rotated_since(self, last_write_ns: int, live: OpenFile) -> None:
        """Read files rotated after the one just finished and before the live one, oldest first.

        When the writer rotates more than once between two looks (small ``--audit-log-maxsize``, a burst),
        the files in between exist only under their rotated names; they were all written after the file
        just finished, which tells them apart from older backups, and before the live one was opened.
        """
        rotated = self._unread_siblings(last_write_ns, os.fstat(live.fd).st_mtime_ns, {(live.device, live.inode)})
        self._read_whole(rotated, "rotated before it was seen")

    def _unread_siblings(self, after_ns: int, until_ns: int, exclude: set[Any]) -> list[tuple[Path, os.stat_result]]:
        """Files beside the path, not read, last changed in ``[after, until]``: oldest first.

        The bounds are inclusive because file times tick coarsely, so a burst of rotations can share one.
        """
        found = []
        for candidate in self._siblings()[1:]:
            if candidate.suffix in COMPRESSED:
                continue
            try:
                info = candidate.stat()
            except OSError:
                continue
            identity = (info.st_dev, info.st_ino)
            if identity in exclude or identity in self._finished or info.st_size == 0:
                continue
            if after_ns <= info.st_mtime_ns <= until_ns:
                found.append((info.st_mtime_ns, info.st_ctime_ns, str(candidate), candidate, info))
        return [(path, info) for *_order, path, info in sorted(found, key=lambda item: item[:3])]

    def _read_whole(self, files: list[tuple[Path, os.stat_result]], why: str) -> None:
        for path, info in files:
            log.info("source %s: reading %s, %s", self.spec.name, path, why)
            opened = OpenFile(os.open(path, os.O_RDONLY), info.st_dev, info.st_ino, 0, b"", str(path))
            try:
                while self._read_lines(opened, final=True):
                    pass
            finally:
                self._finish(opened)

    def _finish(self, done: OpenFile) -> None:
        """Close a file read to its end and remember it (a bounded memory: the latest few dozen)."""
        done.close()
        self._finished[(done.device, done.inode)] = None
        while len(self._finished) > 64:
            del self._finished[next(iter(self._finished))]

    def _caught_up(self, current: OpenFile) -> None:
        self.health.committed(self._position(current), caught_up_ms=int(time.time() * 1000))
        self.health.extra["bytesBehind"] = 0

    def _read_lines(self, current: OpenFile, *, final: bool) -> bool:
        """Read whole lines from ``current`` at its offset, spool them and commit; False at the end.

        ``final`` takes a last line without a newline too (the file will not grow any more).
        """
        data = os.pread(current.fd, CHUNK_BYTES, current.offset)
        if not data:
            return False
        cut = data.rfind(b"\n")
        skip_to: int | None = None
        if cut < 0:
            data = os.pread(current.fd, self.max_line_bytes + 1, current.offset)
            cut = data.find(b"\n")
            if cut < 0 and len(data) > self.max_line_bytes:
                skip_to = self._end_of_long_line(current)
            elif cut < 0 and not final:
                return False  # a line still being written
        rejects: Counter[str] = Counter()
        if skip_to is not None:
            rejects[REJECT_TOO_LONG] += 1
            lines: list[bytes] = []
            consumed = skip_to - current.offset
        else:
            block = data[: cut + 1] if cut >= 0 else data
            consumed = len(block)
            lines = block.split(b"\n")
        kept: list[bytes] = []
        for line in lines:
            if not line.strip():
                continue
            if len(line) > self.max_line_bytes:
                rejects[REJECT_TOO_LONG] += 1
                continue
            event = read_event(line)
            if isinstance(event, str):
                rejects[event] += 1
                continue
            kept.append(line.rstrip(b"\r"))
        current.offset += consumed
        kept_tail = min(TAIL_BYTES, current.offset)
        current.tail = os.pread(current.fd, kept_tail, current.offset - kept_tail)
        position = self._position(current)
        write = self._position_write(position)
        if kept:
            self.writer.append(self.spec.cluster, b"\n".join(kept), len(kept), write)
        else:
            self.writer.commit(write)
        self.health.read(len(kept), rejects, _newest_event_ms(kept))
        self.health.committed(position)
        return True

    def _end_of_long_line(self, current: OpenFile) -> int:
        """The offset just after the newline ending an over-long line (or the end of the file)."""
        offset = current.offset + self.max_line_bytes
        while True:
            data = os.pread(current.fd, CHUNK_BYTES, offset)
            if not data:
                return offset
            cut = data.find(b"\n")
            if cut >= 0:
                return offset + cut + 1
            offset += len(data)

    def _commit_position(self, current: OpenFile) -> None:
        position = self._position(current)
        self.writer.commit(self._position_write(position))
        self.health.committed(position)

    def _position_write(self, position: dict[str, Any]) -> Any:
        def write(conn: Any) -> None:
            source_cursors.save_position(conn, self.spec.name, position)

        return write

    def _position(self, current: OpenFile) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "device": current.device,
            "inode": current.inode,
            "offset": current.offset,
            "tail": current.tail.hex(),
        }


def _newest_event_ms(lines: list[bytes]) -> int | None:
    """The stage time of the last line (audit logs are written in time order), for the health view."""
    if not lines:
        return None
    event = read_event(lines[-1])
    if isinstance(event, str) or not event.stageTimestamp:
        return None
    try:
        return int(datetime.fromisoformat(event.stageTimestamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
