"""Where llamachat's logs go: files in the user log dir, never the terminal.

Libraries log to stderr by default (the MCP SDK even installs a rich handler on the root logger),
which would corrupt a full-screen UI and clutter headless output. One file handler on the root
logger takes every Python log record instead.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
from pathlib import Path
from typing import TextIO

import platformdirs

_lock = threading.Lock()
# Each log is kept under this size, with one older file beside it (NAME.1): a day of chatting
# wrote megabytes to llama.log, which nothing ever trimmed.
LOG_LIMIT = 5 * 1024 * 1024


def log_dir() -> Path:
    return platformdirs.user_log_path("llamachat")


def route_python_logging() -> Path:
    """Send all Python logging to llamachat.log (once per process); returns the file."""
    path = log_dir() / "llamachat.log"
    with _lock:
        root = logging.getLogger()
        if not any(getattr(h, "_llamachat", False) for h in root.handlers):
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=LOG_LIMIT, backupCount=1, encoding="utf-8"
            )
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            handler._llamachat = True  # type: ignore[attr-defined]
            root.addHandler(handler)
            root.setLevel(logging.INFO)
    return path


def rotated(path: Path, limit: int = LOG_LIMIT) -> Path:
    """``path``, its file first moved to NAME.1 (replacing an older one) if it grew past
    ``limit``: for logs another process writes to (an MCP server's stderr)."""
    try:
        if path.stat().st_size > limit:
            path.replace(path.with_name(f"{path.name}.1"))
    except OSError:  # no file yet, or it cannot be moved: appending still works
        pass
    return path


class RotatingLog:
    """A log file written line by line from any thread, moved to NAME.1 when it passes the limit."""

    def __init__(self, path: Path, limit: int = LOG_LIMIT) -> None:
        self.path, self.limit = path, limit
        self._lock = threading.Lock()
        self._stream = self._open()

    def _open(self) -> TextIO:
        rotated(self.path, self.limit)
        stream = self.path.open("a", encoding="utf-8", buffering=1)
        self._size = stream.tell()
        return stream

    def write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._size += len(text)
            if self._size > self.limit:
                self._stream.close()
                self._stream = self._open()
