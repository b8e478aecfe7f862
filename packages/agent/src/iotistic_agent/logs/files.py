"""The agent's log files: `<data dir>/logs/agent.log`, JSON lines, rotated by size.

At start-up the ring is filled from the end of these files, so `iotctl logs -n 50` right
after a restart still shows how the previous run ended. Reading is bounded (only the last
`max_bytes` of each file) and tolerant: a line cut short by a crash or by the read window,
or any line that is not a JSON object, is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .formatting import LogEntry

LOG_DIR_NAME = "logs"
LOG_FILE_NAME = "agent.log"
TAIL_READ_BYTES = 1024 * 1024


def log_file_path(data_dir: Path) -> Path:
    return data_dir / LOG_DIR_NAME / LOG_FILE_NAME


def _tail_lines(path: Path, max_bytes: int) -> list[bytes]:
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(max_bytes)
    except OSError:
        return []
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # begins mid-line
    return lines


def _entry(line: bytes) -> LogEntry | None:
    line = line.strip()
    if not line.startswith(b"{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None  # torn (partly written) or otherwise damaged line
    if not isinstance(value, dict) or not isinstance(value.get("message"), str):
        return None
    return value


def read_tail(path: Path, n: int, max_bytes: int = TAIL_READ_BYTES) -> list[LogEntry]:
    """The last `n` entries of the log at `path`, reaching into its first backup
    (`agent.log.1`) when the current file holds fewer; oldest first."""
    if n <= 0:
        return []
    entries: list[LogEntry] = []
    for candidate in (path, path.with_name(f"{path.name}.1")):
        found = [e for e in map(_entry, _tail_lines(candidate, max_bytes)) if e is not None]
        entries = found[-(n - len(entries)) :] + entries
        if len(entries) >= n:
            break
    return entries[-n:]
