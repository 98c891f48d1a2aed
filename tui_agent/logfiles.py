"""Where llamachat's logs go: files in the user log dir, never the terminal.

Libraries log to stderr by default (the MCP SDK even installs a rich handler on the root logger),
which would corrupt a full-screen UI and clutter headless output. One file handler on the root
logger takes every Python log record instead.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import platformdirs

_lock = threading.Lock()


def log_dir() -> Path:
    return platformdirs.user_log_path("llamachat")


def route_python_logging() -> Path:
    """Send all Python logging to llamachat.log (once per process); returns the file."""
    path = log_dir() / "llamachat.log"
    with _lock:
        root = logging.getLogger()
        if not any(getattr(h, "_llamachat", False) for h in root.handlers):
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            handler._llamachat = True  # type: ignore[attr-defined]
            root.addHandler(handler)
            root.setLevel(logging.INFO)
    return path
