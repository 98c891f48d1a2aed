"""The session store on real SQLite files: round trips, migrations, damage, concurrency."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import tui_agent.store.recorder as recorder_module
from tests.scripted import FunctionTools, ScriptedBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.loop import compact_now
from tui_agent.agent.worker import AgentWorker, SendPrompt
from tui_agent.commands.history_cmd import open_store
from tui_agent.config import AgentConfig, Config
from tui_agent.engine.state_files import StateShelf, state_files, states_root
from tui_agent.errors import HistoryUnavailableError
from tui_agent.events import Completed, PermissionRequest
from tui_agent.store.db import SCHEMA_VERSION, open_database
from tui_agent.store.export import export_json, export_markdown
from tui_agent.store.recorder import SessionRecorder
from tui_agent.store.sessions import SessionNotFoundError, SessionStore, title_from
from tui_agent.tools.base import CallContext, ToolCall, ToolOutcome, ToolSpec


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


def run_prompts(
    store: SessionStore,
    backend: ScriptedBackend,
    prompts: list[str],
    tools=None,
    conversation: Conversation | None = None,
) -> AgentWorker:  # type: ignore[no-untyped-def]
    worker = AgentWorker(
        lambda sink: backend,
        tools,
        AgentConfig(),
        ask_user=False,
        recorder=SessionRecorder(store, "scripted", "/ws"),
    )
    if conversation is not None:
        worker.conversation = conversation
    worker.start()
    for prompt in prompts:
        worker.submit(SendPrompt(prompt))
        while not isinstance(worker.events.get(timeout=10), Completed):
            pass
    worker.stop()
    return worker


def weather() -> FunctionTools:
    return FunctionTools().add(
        "get_weather", lambda city: f"drizzle over {city}", {"city": {"type": "string"}}, ["city"]
    )


CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Bergen"}}</tool_call>'


def test_schema_is_created_and_versioned(db: Path) -> None:
    opened = open_database(db)
    assert opened.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert opened.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    opened.connection.close()


def test_migrates_an_existing_version_0_file(db: Path) -> None:
    sqlite3.connect(db).execute("CREATE TABLE unrelated (x)").connection.commit()
    store = SessionStore(db)
    assert store.notices == []
    assert store.count_sessions() == 0
    assert sqlite3.connect(db).execute("SELECT count(*) FROM unrelated").fetchone()[0] == 0


def test_round_trip_of_every_kind_of_record(db: Path) -> None:
    store = SessionStore(db)
    backend = ScriptedBackend(["Checking. " + CALL, "Bergen has drizzle."])
    worker = run_prompts(store, backend, ["What is the weather in Bergen?"], weather())
    sid = worker.conversation.id
    summary = store.get_session(sid)
    assert summary.title == "What is the weather in Bergen?" and summary.model == "scripted"
    assert summary.workspace == "/ws" and summary.message_count == 4
    entries = store.entries(sid)
    kinds = [(e.kind, e.role) for e in entries]
    assert ("message", "user") in kinds and ("message", "tool") in kinds and ("stats", "") in kinds
    assert ("permission", "") not in kinds  # FunctionTools has no gate; see the gate test below
    call = next(e for e in entries if e.data.get("tool_calls"))
    assert (
        call.data["tool_calls"][0]["arguments"] == {"city": "Bergen"}
        and call.content == "Checking."
    )
    result = next(e for e in entries if e.role == "tool")
    assert result.data == {
        "success": True,
        "denied": False,
        "tool_call_id": "call00001",
        "name": "get_weather",
    }
    restored = store.load_conversation(sid)
    assert [(m.role, m.content) for m in restored.messages] == [
        (m.role, m.content) for m in worker.conversation.messages
    ]
    assert restored.messages[1].tool_calls == worker.conversation.messages[1].tool_calls
    assert restored.tool_calls_made == 1


def test_permission_records_and_denials(db: Path) -> None:
    class Gate:
        def specs(self) -> list[ToolSpec]:
            return [ToolSpec("rm", "remove", {"type": "object", "properties": {}})]

        def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
            from tui_agent.events import PermissionResult

            decision = context.ask(PermissionRequest("r", call.id, call.name, {}, "deletes", "rm"))
            context.emit(
                PermissionResult(
                    call.id, call.name, decision.allowed, decision.scope, decision.reason
                )
            )
            return ToolOutcome(False, "denied", denied=True)

    store = SessionStore(db)
    worker = run_prompts(
        store,
        ScriptedBackend(['<tool_call>{"name": "rm", "arguments": {}}</tool_call>', "ok"]),
        ["remove it"],
        Gate(),
    )
    entries = store.entries(worker.conversation.id)
    permission = next(e for e in entries if e.kind == "permission")
    assert permission.data["allowed"] is False and permission.data["tool"] == "rm"
    assert next(e for e in entries if e.role == "tool").data["denied"] is True


def test_compaction_boundary_and_resume(db: Path) -> None:
    store = SessionStore(db)
    backend = ScriptedBackend(
        [f"answer {i}" for i in range(6)], summaries=["they talked about six things"]
    )
    worker = run_prompts(store, backend, [f"question {i}" for i in range(4)])
    conversation = worker.conversation
    compact_now(
        backend,
        conversation,
        weather(),
        replace(AgentConfig(), compaction_keep_recent=2),
        lambda e: None,
    )
    recorder = SessionRecorder(store)
    from tui_agent.events import ContextCompacted

    recorder.observe(
        ContextCompacted(8, 2, 100, 4096, "they talked about six things", True), conversation
    )
    restored = store.load_conversation(conversation.id)
    assert restored.summaries == ["they talked about six things"]
    assert [m.content for m in restored.messages] == ["question 3", "answer 3"]
    assert len(store.entries(conversation.id)) > 8, (
        "history keeps everything, the model gets the summary"
    )
    assert "they talked" in export_markdown(store, conversation.id)


def test_draft_is_saved_while_streaming_and_finished_after(db: Path) -> None:
    store = SessionStore(db)
    backend = ScriptedBackend(["a reply that streams slowly " * 4], pause_after=3, piece_size=4)
    worker = AgentWorker(
        lambda sink: backend, None, AgentConfig(), recorder=SessionRecorder(store)
    ).start()
    recorder_module.DRAFT_INTERVAL_SECONDS = 0.0
    try:
        worker.submit(SendPrompt("stream please"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows = (
                sqlite3.connect(db)
                .execute("SELECT content, interrupted FROM entries WHERE role='assistant'")
                .fetchall()
            )
            if rows:
                break
            time.sleep(0.02)
        assert rows and rows[0][1] == 1 and rows[0][0].startswith("a reply"), (
            "the draft is saved as interrupted"
        )
        backend.resume.set()
        while not isinstance(worker.events.get(timeout=10), Completed):
            pass
    finally:
        recorder_module.DRAFT_INTERVAL_SECONDS = 0.5
        worker.stop()
    rows = (
        sqlite3.connect(db)
        .execute("SELECT content, interrupted FROM entries WHERE role='assistant'")
        .fetchall()
    )
    assert rows == [(("a reply that streams slowly " * 4).strip(), 0)], "one row, finished in place"


def test_a_draft_is_saved_on_a_timer_while_the_next_token_is_slow(db: Path) -> None:
    """Tokens seconds apart (a busy CPU): what arrived is on disk within half a second or so,
    not only when the next token comes; and the timer never writes over the finished reply."""
    store = SessionStore(db)
    reply = "a reply that streams slowly " * 4
    backend = ScriptedBackend([reply], pause_after=3, piece_size=4)
    worker = AgentWorker(
        lambda sink: backend, None, AgentConfig(), recorder=SessionRecorder(store)
    ).start()

    def assistant_rows() -> list[tuple[str, int]]:
        with sqlite3.connect(db) as reader:
            query = "SELECT content, interrupted FROM entries WHERE role='assistant'"
            return reader.execute(query).fetchall()

    try:
        worker.submit(SendPrompt("stream please"))
        deadline = time.monotonic() + 5
        while assistant_rows() != [(reply[:12], 1)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert assistant_rows() == [(reply[:12], 1)], "the three pieces before the pause"
        backend.resume.set()
        while not isinstance(worker.events.get(timeout=10), Completed):
            pass
        time.sleep(2 * recorder_module.DRAFT_INTERVAL_SECONDS)
    finally:
        worker.stop()
    assert assistant_rows() == [(reply.strip(), 0)], "finished in place, not overwritten"


def test_search_finds_words_in_tool_results_and_calls(db: Path) -> None:
    store = SessionStore(db)
    worker = run_prompts(store, ScriptedBackend([CALL, "done"]), ["weather please"], weather())
    run_prompts(store, ScriptedBackend(["unrelated"]), ["something else"])
    hits = store.search("drizzle")
    assert [h.session_id for h in hits] == [worker.conversation.id]
    assert "[drizzle]" in hits[0].snippet
    assert store.search("Bergen")[0].session_id == worker.conversation.id
    assert store.search("driz")[0].session_id == worker.conversation.id, (
        "prefix match on the last word"
    )
    assert store.search('"); DROP TABLE sessions; --') == []
    assert store.search("") == []


def test_list_rename_delete_and_ids(db: Path) -> None:
    store = SessionStore(db)
    first = run_prompts(store, ScriptedBackend(["a"]), ["first prompt"]).conversation.id
    time.sleep(0.01)
    second = run_prompts(store, ScriptedBackend(["b"]), ["second prompt"]).conversation.id
    assert [s.id for s in store.list_sessions()] == [second, first]
    assert store.latest_session_id() == second
    assert store.resolve_id(first[:6]) == first
    with pytest.raises(SessionNotFoundError):
        store.resolve_id("zzzz")
    store.rename(first, "Renamed")
    assert store.get_session(first).title == "Renamed"
    assert store.system_prompt(first) == store.load_conversation(first).system_prompt
    store.delete_session(first)
    assert not store.exists(first) and store.search("first") == []
    assert (
        sqlite3.connect(db)
        .execute("SELECT count(*) FROM entries WHERE session_id = ?", (first,))
        .fetchone()[0]
        == 0
    )
    with pytest.raises(SessionNotFoundError):
        store.delete_session(first)
    with pytest.raises(SessionNotFoundError):
        store.system_prompt(first)


def test_retention_is_off_by_default_and_deletes_only_old_sessions(db: Path) -> None:
    store = SessionStore(db)
    old = run_prompts(store, ScriptedBackend(["a"]), ["old"]).conversation.id
    new = run_prompts(store, ScriptedBackend(["b"]), ["new"]).conversation.id
    sqlite3.connect(db, isolation_level=None).execute(
        "UPDATE sessions SET updated = 0 WHERE id = ?", (old,)
    )
    assert SessionStore(db).exists(old), "no retention unless configured"
    kept = SessionStore(db, retention_days=30)
    assert not kept.exists(old) and kept.exists(new) and "retention_days" in kept.notices[0]
    assert kept.expired == [old] and SessionStore(db, retention_days=30).expired == []


def test_retention_removes_the_saved_model_states_of_the_sessions_it_deletes(
    tmp_path: Path, db: Path
) -> None:
    store = SessionStore(db)
    old = run_prompts(store, ScriptedBackend(["a"]), ["old"]).conversation.id
    new = run_prompts(store, ScriptedBackend(["b"]), ["new"]).conversation.id
    sqlite3.connect(db, isolation_level=None).execute(
        "UPDATE sessions SET updated = 0 WHERE id = ?", (old,)
    )
    shelf = StateShelf({"model": "m"}, 10**9, root=states_root())
    for session, tokens in ((old, range(100)), (new, range(200, 300))):
        shelf.save_later(tuple(tokens), b"s" * 100, 100, session)
    shelf.flush()
    config = Config()
    config.history.db_path = str(db)
    config.history.retention_days = 30
    open_store(config)
    assert {state.session for state in state_files()} == {new}


def test_corrupt_file_is_moved_aside_never_overwritten(db: Path) -> None:
    garbage = b"this is not a database at all" * 100
    db.write_bytes(garbage)
    store = SessionStore(db)
    assert len(store.notices) == 1 and "moved to" in store.notices[0]
    aside = [p for p in db.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    run_prompts(store, ScriptedBackend(["fine"]), ["works again"])
    assert store.count_sessions() == 1


def test_two_damaged_files_moved_aside_in_one_second_both_survive(db: Path) -> None:
    damaged = [b"first damaged file" * 100, b"second damaged file" * 100]
    for garbage in damaged:
        db.write_bytes(garbage)
        SessionStore(db).close()
    aside = [p for p in db.parent.iterdir() if ".corrupt-" in p.name]
    assert sorted(p.read_bytes() for p in aside) == sorted(damaged)


def test_damaged_pages_are_detected(db: Path) -> None:
    store = SessionStore(db)
    for i in range(30):
        run_prompts(store, ScriptedBackend(["x" * 2000]), [f"prompt {i} " + "y" * 2000])
    store.close()
    data = bytearray(db.read_bytes())
    for offset in range(8192, min(len(data), 40000)):
        data[offset] = 0xFF
    db.write_bytes(bytes(data))
    reopened = SessionStore(db)
    assert reopened.notices and "moved to" in reopened.notices[0]


def test_newer_version_is_moved_aside(db: Path) -> None:
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    connection.close()
    store = SessionStore(db)
    assert "newer llamachat" in store.notices[0]
    assert any(p.name.startswith("history.db.v") for p in db.parent.iterdir())


def test_concurrent_reader_while_writing(db: Path) -> None:
    store = SessionStore(db)
    conversation = Conversation()
    store.create_session(conversation)
    errors: list[BaseException] = []
    counts: list[int] = []

    def read() -> None:
        reader = sqlite3.connect(db, timeout=10)
        try:
            for _ in range(200):
                counts.append(reader.execute("SELECT count(*) FROM entries").fetchone()[0])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(300):
        store.add_message(conversation.id, Message("user", f"message {i}"))
    thread.join()
    assert not errors and counts == sorted(counts), "a reader sees a consistent, growing history"
    assert store.get_session(conversation.id).message_count == 300


def test_exports(db: Path) -> None:
    store = SessionStore(db)
    worker = run_prompts(
        store, ScriptedBackend([CALL, "Drizzle in Bergen."]), ["weather?"], weather()
    )
    markdown = export_markdown(store, worker.conversation.id)
    assert (
        "# weather?" in markdown
        and "**You**:" in markdown
        and "Tool call `get_weather`" in markdown
    )
    assert "drizzle over Bergen" in markdown
    data = json.loads(export_json(store, worker.conversation.id))
    assert data["session"]["id"] == worker.conversation.id and len(data["entries"]) >= 4


def test_titles() -> None:
    assert title_from("\n  Fix the bug in parser.py\nmore") == "Fix the bug in parser.py"
    assert len(title_from("x" * 200)) == 60 and title_from("x" * 200).endswith("…")
    assert title_from("   ") == "untitled"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_history_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(HistoryUnavailableError) as caught:
            SessionStore(folder / "h.db")
    finally:
        folder.chmod(0o755)
    assert f"the folder {folder} is not writable" in caught.value.message
