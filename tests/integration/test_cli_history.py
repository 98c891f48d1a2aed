"""`llamachat history` against a real SQLite file filled through the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.store.sessions import SessionStore


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[history]\ndb_path = "{tmp_path / "h.db"}"\n')
    return path


@pytest.fixture
def session_id(tmp_path: Path) -> str:
    store = SessionStore(tmp_path / "h.db")
    conversation = Conversation()
    store.create_session(conversation, model="demo")
    store.add_message(conversation.id, Message("user", "Where is the lighthouse keeper?"))
    store.add_message(
        conversation.id,
        Message("tool", "found: keeper sleeps in the tower", tool_call_id="call_1", name="grep"),
    )
    store.add_message(conversation.id, Message("assistant", "In the tower."))
    return conversation.id


def test_list_show_search_export(config: Path, session_id: str, tmp_path: Path) -> None:
    listed = run_cli("history", "list", "--config", str(config), "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["id"] == session_id
    assert (
        "Where is the lighthouse keeper?"
        in run_cli("history", "list", "--config", str(config)).stdout
    )
    shown = run_cli("history", "show", session_id[:5], "--config", str(config))
    assert (
        shown.returncode == 0
        and "In the tower." in shown.stdout
        and "keeper sleeps" in shown.stdout
    )
    found = run_cli("history", "search", "tower", "--config", str(config), "--json")
    assert json.loads(found.stdout)[0]["session_id"] == session_id
    assert (
        "nothing matches" in run_cli("history", "search", "zebra", "--config", str(config)).stdout
    )
    out = tmp_path / "s.md"
    exported = run_cli("history", "export", session_id, "-o", str(out), "--config", str(config))
    assert exported.returncode == 0 and out.read_text().startswith(
        "# Where is the lighthouse keeper?"
    )
    as_json = run_cli("history", "export", session_id, "--format", "json", "--config", str(config))
    assert json.loads(as_json.stdout)["session"]["id"] == session_id


def test_rename_and_delete_asks_first(config: Path, session_id: str) -> None:
    assert (
        run_cli("history", "rename", session_id, "Keeper", "--config", str(config)).returncode == 0
    )
    assert "Keeper" in run_cli("history", "list", "--config", str(config)).stdout
    refused = run_cli("history", "delete", session_id, "--config", str(config))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert session_id in run_cli("history", "list", "--config", str(config)).stdout
    deleted = run_cli("history", "delete", session_id, "--yes", "--config", str(config))
    assert deleted.returncode == 0
    assert "no sessions yet" in run_cli("history", "list", "--config", str(config)).stdout


def test_unknown_ids(config: Path, session_id: str) -> None:
    for args in (["show", "nope"], ["export", "nope"], ["delete", "nope", "--yes"]):
        result = run_cli("history", *args, "--config", str(config))
        assert result.returncode == 2 and "no session with id 'nope'" in result.stderr
    resume = run_cli("-p", "hi", "--resume", "nope", "--config", str(config))
    assert resume.returncode == 2 and "no session with id" in resume.stderr


def test_continue_without_sessions(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{tmp_path / "empty.db"}"\n')
    result = run_cli("-p", "hi", "-c", "--config", str(config))
    assert result.returncode == 2 and "no saved session yet" in result.stderr


def test_a_run_that_saved_nothing_reports_no_session(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{tmp_path / "h.db"}"\n')
    result = run_cli(
        "-p", "hi", "--model", str(tmp_path / "missing.gguf"), "--output-format", "json",
        "--config", str(config),
    )  # fmt: skip
    record = json.loads(result.stdout)
    assert result.returncode == 3 and record["reason"] == "error", "README: 3, model not found"
    assert record["session_id"] is None and "model file not found" in record["errors"][0]["message"]
    assert record["errors"][0]["kind"] == "model_not_found"


def test_a_missing_model_exits_3_and_names_the_flag(tmp_path: Path) -> None:
    result = run_cli("-p", "hi", "--no-save", "--model", str(tmp_path / "missing.gguf"))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "model file not found" in result.stderr and "--model picks another" in result.stderr
    assert "/model" not in result.stderr, "no chat command in headless hints"


@pytest.mark.parametrize("argv", [["history", "list"], ["-p", "hi"]])
def test_a_history_folder_that_cannot_be_made_is_named(tmp_path: Path, argv: list[str]) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the history folder should be")
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{blocker / "h.db"}"\n')
    result = run_cli(*argv, "--config", str(config))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        f"{blocker / 'h.db'} cannot be opened: {blocker} is a file, not a folder" in result.stderr
    )
    assert "--no-save" in result.stderr
    assert blocker.read_text() == "a file where the history folder should be"


def test_output_into_a_closed_pipe_ends_quietly(config: Path, session_id: str) -> None:
    """`llamachat history list | head -1`: the reader leaves early; no traceback follows."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tui_agent", "history", "list", "--config", str(config)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""
