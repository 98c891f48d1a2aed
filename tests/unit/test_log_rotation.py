"""Logs stay bounded: each file is moved to NAME.1 once it passes the limit (a day of chatting
wrote megabytes to llama.log, which nothing trimmed)."""

from __future__ import annotations

import logging
from pathlib import Path

from tui_agent.logfiles import LOG_LIMIT, RotatingLog, rotated, route_python_logging


def test_a_log_written_line_by_line_rotates_at_the_limit(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "llama.log", limit=1000)
    for n in range(100):
        log.write(f"line {n:03d} " + "x" * 40 + "\n")
    current, older = tmp_path / "llama.log", tmp_path / "llama.log.1"
    assert current.stat().st_size <= 1000 + 60 and 1000 < older.stat().st_size <= 1000 + 60
    assert "line 099" in current.read_text(), "the newest lines are in the current file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llama.log", "llama.log.1"]


def test_a_log_another_process_writes_rotates_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "mcp-files.log"
    path.write_text("old\n" * 10)
    assert rotated(path, limit=100) == path and path.exists()
    path.write_text("old\n" * 100)
    rotated(path, limit=100)
    assert not path.exists() and (tmp_path / "mcp-files.log.1").read_text().startswith("old")


def test_python_logging_goes_to_a_rotating_file() -> None:
    path = route_python_logging()
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_llamachat", False)]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert (
        handler.maxBytes == LOG_LIMIT and handler.backupCount == 1 and path.name == "llamachat.log"
    )
