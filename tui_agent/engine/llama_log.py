"""Route llama.cpp's own log lines to a file, never to the terminal.

llama.cpp writes diagnostics through a C callback; llama-cpp-python installs one that prints to
stderr, which would corrupt a full-screen UI. Ours appends to a log file and keeps the most recent
lines in memory, so a failed load can be explained (e.g. "unknown model architecture").
"""

from __future__ import annotations

import collections
import ctypes
import threading
from pathlib import Path
from typing import Any

from tui_agent.logfiles import log_dir

_recent: collections.deque[tuple[int, str]] = collections.deque(maxlen=200)
_lock = threading.Lock()
_state: dict[str, Any] = {"callback": None, "path": None, "seq": 0}


def log_path() -> Path:
    return log_dir() / "llama.log"


def install_log_router(path: Path | None = None) -> Path:
    """Install the callback once per process; returns the log file in use."""
    with _lock:
        if _state["callback"] is not None:
            return Path(_state["path"])
        import llama_cpp

        target = path or log_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        stream = target.open("a", encoding="utf-8", buffering=1)

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _route(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace")
            _state["seq"] += 1
            _recent.append((_state["seq"], line))
            stream.write(line)

        llama_cpp.llama_log_set(_route, ctypes.c_void_p(0))
        # The ctypes callback must outlive every llama.cpp call: keep a reference for the process.
        _state["callback"], _state["path"] = _route, str(target)
        return target


def log_mark() -> int:
    """A position in the log; pass it to recent_log to get what came after."""
    return int(_state["seq"])


def recent_log(since: int = 0) -> list[str]:
    """The recent log lines written after the mark ``since``."""
    return [line for seq, line in list(_recent) if seq > since]
