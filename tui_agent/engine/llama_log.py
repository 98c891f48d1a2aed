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

from tui_agent.logfiles import RotatingLog, log_dir

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
        stream = RotatingLog(target)

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _route(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace")
            _state["seq"] += 1
            _recent.append((_state["seq"], line))
            stream.write(line)

        llama_cpp.llama_log_set(_route, ctypes.c_void_p(0))
        # The ctypes callback must outlive every llama.cpp call: keep a reference for the process.
        _state["callback"], _state["path"] = _route, str(target)
        _keep_process_output()
        return target


class _NoRedirect:
    """Stands in for llama-cpp-python's suppress_stdout_stderr (same call, does nothing)."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _keep_process_output() -> None:
    """llama-cpp-python silences a model load by pointing file descriptors 1 and 2 at /dev/null
    while it runs. That is process-wide: what other threads write meanwhile is lost (a headless
    stream-json line lost its newline in CI; the chat's frames go the same way). llama.cpp's own
    output takes the log callback above, so the redirect is replaced with nothing."""
    import llama_cpp._internals
    import llama_cpp.llama

    for module in (llama_cpp.llama, llama_cpp._internals):
        module.suppress_stdout_stderr = _NoRedirect  # type: ignore[attr-defined]


def log_mark() -> int:
    """A position in the log; pass it to recent_log to get what came after."""
    return int(_state["seq"])


def recent_log(since: int = 0) -> list[str]:
    """The recent log lines written after the mark ``since``."""
    return [line for seq, line in list(_recent) if seq > since]
