"""History with the real demo model: kill -9 mid-generation, headless JSON output, --continue."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import headless_config, run_cli
from tui_agent.store.sessions import SessionStore

pytestmark = pytest.mark.model


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return headless_config(tmp_path, max_tokens=1500)


def test_kill_9_during_generation_keeps_every_finished_message(
    config: Path, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    first = run_cli("--config", str(config), "-p", "Say hello.")
    assert first.returncode == 0, first.stderr
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui_agent",
            "--config",
            str(config),
            "-c",
            "-p",
            "Write a very long story about a dragon, a knight and a castle, with many chapters.",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 120
    draft = None
    while time.monotonic() < deadline and child.poll() is None:
        rows = (
            sqlite3.connect(db, timeout=5)
            .execute("SELECT content FROM entries WHERE role = 'assistant' AND interrupted = 1")
            .fetchall()
        )
        if rows and len(rows[0][0]) > 40:
            draft = rows[0][0]
            break
        time.sleep(0.1)
    assert draft is not None and child.poll() is None, (
        "the reply in flight must be saved while it streams"
    )
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = SessionStore(db)
    assert store.notices == [], "the database must open cleanly after kill -9"
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    session_id = store.latest_session_id()
    assert session_id is not None
    entries = [e for e in store.entries(session_id) if e.kind == "message"]
    assert [e.role for e in entries] == ["user", "assistant", "user", "assistant"]
    assert entries[0].content == "Say hello." and not entries[1].interrupted
    assert entries[3].interrupted and entries[3].content.startswith(draft[:40])
    resumed = run_cli("--config", str(config), "-c", "-p", "Now say goodbye.")
    assert resumed.returncode == 0, resumed.stderr
    assert store.get_session(session_id).message_count == 6


def test_stream_json_parses_line_by_line_and_matches_the_events(config: Path) -> None:
    result = run_cli(
        "--config", str(config), "-p", "Name two animals.", "--output-format", "stream-json"
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    types = [r["type"] for r in records]
    assert types[0] in ("model_load_progress", "iteration_start") and types[-2:] == [
        "completed",
        "result",
    ]
    assert "iteration_start" in types and "turn_statistics" in types and "text_delta" in types
    text = "".join(r["text"] for r in records if r["type"] == "text_delta")
    completed = records[-2]
    assert text.strip() == completed["text"] and completed["reason"] in ("done", "length")
    closing = records[-1]
    assert closing["session_id"] and closing["usage"]["generated_tokens"] > 0


def test_json_output_and_no_save(config: Path, tmp_path: Path) -> None:
    result = run_cli("--config", str(config), "-p", "Say yes.", "--output-format", "json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    # The reply's words depend on the build and the CPU: its shape and the saved session do not.
    assert record["type"] == "result" and isinstance(record["result"], str)
    assert record["session_id"] and record["usage"]["generated_tokens"] > 0
    assert 0 <= record["usage"]["accepted_draft_tokens"] < record["usage"]["generated_tokens"]
    before = SessionStore(tmp_path / "history.db").count_sessions()
    unsaved = run_cli(
        "--config", str(config), "-p", "Say no.", "--no-save", "--output-format", "json"
    )
    assert json.loads(unsaved.stdout)["session_id"] is None
    assert SessionStore(tmp_path / "history.db").count_sessions() == before
