"""The agent's logging, set up once at start-up on top of stdlib `logging`.

Every `logging.getLogger("iotistic....")` in the agent keeps working: records go to the root
logger's handlers, which are installed here, each behind the redaction filter:

- stderr: text for people on a terminal, JSON lines otherwise (`LOG_FORMAT`);
- `<data dir>/logs/agent.log`: JSON lines, rotated by size (`LOG_FILE_*`);
- the in-memory ring that serves `iotctl logs -n N` and `--follow`.

Other handlers (e.g. a cloud log shipper) attach with `add_handler` and get the same filter.
"""

from __future__ import annotations

import logging
import sys
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Protocol

from ..private_files import open_private, private_dir, private_file
from .files import log_file_path, read_tail
from .formatting import JsonLinesFormatter, LogFormat, formatter_for, resolve_format
from .redaction import RedactingFilter
from .ring import LogRing

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class PrivateRotatingFileHandler(RotatingFileHandler):
    """agent.log and its rotated files are created 0600: they may name anything the agent
    saw. (``_open`` is the one place the standard handler creates its file, at start and
    after every rotation.)"""

    def _open(self) -> TextIOWrapper:
        fd = open_private(Path(self.baseFilename))
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


class LogSettings(Protocol):
    """The settings logging reads (AgentSettings has them)."""

    @property
    def LOG_LEVEL(self) -> str: ...
    @property
    def LOG_FORMAT(self) -> LogFormat: ...
    @property
    def LOG_FILE_ENABLED(self) -> bool: ...
    @property
    def LOG_FILE_MAX_BYTES(self) -> int: ...
    @property
    def LOG_FILE_COUNT(self) -> int: ...


def level_number(level: str) -> int:
    found = _LEVELS.get(level.strip().lower())
    if found is None:
        raise ValueError(f"unknown log level {level!r}: expected debug, info, warn or error")
    return found


class LoggingSetup:
    """Owns the root logger's handlers; `apply` takes new settings at once (runtime config)."""

    def __init__(
        self,
        settings: LogSettings,
        data_dir: Path | None,
        *,
        stream: IO[str] | None = None,
        root: logging.Logger | None = None,
        ring_capacity: int = 2000,
    ) -> None:
        self.root = root if root is not None else logging.getLogger()
        self.redaction = RedactingFilter()
        self.stream = stream if stream is not None else sys.stderr
        self.file_path = log_file_path(data_dir) if data_dir is not None else None
        self.format: LogFormat = settings.LOG_FORMAT
        self.ring = LogRing(ring_capacity)
        if self.file_path is not None:
            # Before this run writes anything: the previous run's end, for `iotctl logs`.
            self.ring.seed(read_tail(self.file_path, ring_capacity))
        for handler in list(self.root.handlers):  # e.g. an earlier basicConfig
            self.root.removeHandler(handler)
        self.console = logging.StreamHandler(self.stream)
        self.console.setFormatter(formatter_for(resolve_format(self.format, self.stream)))
        self.file: RotatingFileHandler | None = None
        self._handlers: list[logging.Handler] = []
        self.add_handler(self.console)
        self.add_handler(self.ring)
        self.set_level(settings.LOG_LEVEL)
        self.set_file(
            settings.LOG_FILE_ENABLED, settings.LOG_FILE_MAX_BYTES, settings.LOG_FILE_COUNT
        )

    def add_handler(self, handler: logging.Handler) -> None:
        """Attach a handler to the agent's log, behind the redaction filter."""
        handler.addFilter(self.redaction)
        self.root.addHandler(handler)
        self._handlers.append(handler)

    def remove_handler(self, handler: logging.Handler) -> None:
        self.root.removeHandler(handler)
        if handler in self._handlers:
            self._handlers.remove(handler)
        handler.close()

    def set_level(self, level: str) -> None:
        self.root.setLevel(level_number(level))

    def set_format(self, wanted: LogFormat) -> None:
        """stderr's format: `json`, `text`, or `auto` (text on a terminal)."""
        self.format = wanted
        self.console.setFormatter(formatter_for(resolve_format(wanted, self.stream)))

    def set_file(self, enabled: bool, max_bytes: int, count: int) -> None:
        """Open, close or re-limit the rotated file; a file that cannot be opened is
        reported on the other handlers and the agent runs on without it."""
        if not enabled or self.file_path is None:
            if self.file is not None:
                self.remove_handler(self.file)
                self.file = None
            return
        if self.file is None:
            try:
                private_dir(self.file_path.parent.parent)  # the data directory
                private_dir(self.file_path.parent)
                for older in self.file_path.parent.glob(self.file_path.name + ".*"):
                    private_file(older)  # left 0644 by an older release
                handler = PrivateRotatingFileHandler(
                    self.file_path, maxBytes=max_bytes, backupCount=count, encoding="utf-8"
                )
            except OSError as exc:
                logging.getLogger("iotistic.logs").error(
                    "cannot write the log file %s: %s", self.file_path, exc
                )
                return
            handler.setFormatter(JsonLinesFormatter())
            self.file = handler
            self.add_handler(handler)
        self.file.maxBytes = max_bytes
        self.file.backupCount = count

    def apply(self, settings: LogSettings) -> None:
        self.set_level(settings.LOG_LEVEL)
        self.set_format(settings.LOG_FORMAT)
        self.set_file(
            settings.LOG_FILE_ENABLED, settings.LOG_FILE_MAX_BYTES, settings.LOG_FILE_COUNT
        )

    def close(self) -> None:
        for handler in list(self._handlers):
            self.remove_handler(handler)
