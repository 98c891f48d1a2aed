"""Sessions and everything that happened in them, in one SQLite database.

Each write is its own transaction, committed at once, so a crash loses at most the reply that
was streaming (and that is kept as an interrupted draft). Nothing is deleted unless the user asks
(or sets ``[history] retention_days``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tui_agent.agent.conversation import Conversation, Message, Role
from tui_agent.errors import LlamachatError
from tui_agent.store.db import default_db_path, open_database
from tui_agent.tools.base import ToolCall

TITLE_LENGTH = 60


class SessionNotFoundError(LlamachatError):
    exit_code = 2


@dataclass(frozen=True)
class SessionSummary:
    id: str
    title: str
    created: float
    updated: float
    model: str
    workspace: str
    message_count: int


@dataclass(frozen=True)
class Entry:
    """One record of a session's history, as stored."""

    id: int
    kind: str  # message | permission | compaction | stats
    role: str
    content: str
    data: dict[str, Any]
    interrupted: bool
    created: float


@dataclass(frozen=True)
class SearchHit:
    session_id: str
    title: str
    snippet: str
    entry_id: int
    updated: float


def title_from(prompt: str) -> str:
    line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "untitled")
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


class SessionStore:
    def __init__(self, path: Path | None = None, retention_days: int = 0) -> None:
        opened = open_database(path or default_db_path())
        self.path = opened.path
        self.notices = opened.notices
        self._db = opened.connection
        # One connection shared by the worker (writes) and the UI (reads): serialize its use.
        self._lock = threading.RLock()
        # Sessions retention deleted now: what was saved for them elsewhere goes too.
        self.expired = self.delete_older_than(retention_days) if retention_days > 0 else []
        if self.expired:
            self.notices.append(
                f"deleted {len(self.expired)} session(s) older than {retention_days} days"
                " (retention_days)"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return int(cursor.lastrowid or 0)

    def _transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[int]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [
                    int(self._db.execute(sql, params).lastrowid or 0) for sql, params in statements
                ]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return ids

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- sessions -------------------------------------------------------------------------

    def create_session(
        self,
        conversation: Conversation,
        model: str = "",
        workspace: str = "",
        title: str = "",
        parent_id: str | None = None,
    ) -> None:
        now = time.time()
        self._write(
            "INSERT OR IGNORE INTO sessions (id, title, created, updated, model, workspace, parent_id, system_prompt)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation.id,
                title,
                now,
                now,
                model,
                workspace,
                parent_id,
                conversation.system_prompt,
            ),
        )

    def exists(self, session_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM sessions WHERE id = ?", (session_id,)))

    def rename(self, session_id: str, title: str) -> None:
        self._require(session_id)
        self._write(
            "UPDATE sessions SET title = ? WHERE id = ?", (title.strip() or "untitled", session_id)
        )

    def delete_session(self, session_id: str) -> None:
        self._require(session_id)
        self._write("DELETE FROM sessions WHERE id = ?", (session_id,))

    def delete_older_than(self, days: int) -> list[str]:
        """Delete the sessions not updated for ``days`` days; their ids."""
        cutoff = time.time() - days * 86400
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Not DELETE … RETURNING: SQLite before 3.35 (Debian 11's) lacks it.
                where = ("WHERE updated < ?", (cutoff,))
                rows = self._db.execute(f"SELECT id FROM sessions {where[0]}", where[1]).fetchall()
                self._db.execute(f"DELETE FROM sessions {where[0]}", where[1])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [str(row[0]) for row in rows]

    def _require(self, session_id: str) -> None:
        if not self.exists(session_id):
            raise SessionNotFoundError(
                f"no session with id {session_id!r}", "list sessions with `llamachat history list`"
            )

    def resolve_id(self, prefix: str) -> str:
        """A full session id from a unique prefix (ids are long; people type the start)."""
        rows = self._read(
            "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (_like_prefix(prefix),)
        )
        if len(rows) == 1:
            return str(rows[0]["id"])
        if not rows:
            raise SessionNotFoundError(
                f"no session with id {prefix!r}", "list sessions with `llamachat history list`"
            )
        raise SessionNotFoundError(f"{prefix!r} matches several sessions", "type more of the id")

    def recent_prompts(self, limit: int = 200) -> list[str]:
        """What the user sent most recently, in any session, oldest first (for prompt recall)."""
        rows = self._read(
            "SELECT content FROM entries WHERE kind = 'message' AND role = 'user'"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [str(row["content"]) for row in reversed(rows)]

    def latest_session_id(self) -> str | None:
        rows = self._read("SELECT id FROM sessions ORDER BY updated DESC LIMIT 1")
        return str(rows[0]["id"]) if rows else None

    def list_sessions(self, limit: int = 50, offset: int = 0) -> list[SessionSummary]:
        rows = self._read(
            "SELECT id, title, created, updated, model, workspace, message_count FROM sessions"
            " ORDER BY updated DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [SessionSummary(**dict(row)) for row in rows]

    def count_sessions(self) -> int:
        return int(self._read("SELECT count(*) FROM sessions")[0][0])

    def get_session(self, session_id: str) -> SessionSummary:
        rows = self._read(
            "SELECT id, title, created, updated, model, workspace, message_count FROM sessions WHERE id = ?",
            (session_id,),
        )
        if not rows:
            raise SessionNotFoundError(
                f"no session with id {session_id!r}", "list sessions with `llamachat history list`"
            )
        return SessionSummary(**dict(rows[0]))

    # --- entries --------------------------------------------------------------------------

    def add_message(
        self, session_id: str, message: Message, data: dict[str, Any] | None = None
    ) -> int:
        """Store a finished message (commits at once); returns its entry id."""
        row = _message_row(message, data)
        text = _search_text(message)
        now = time.time()
        entry_id, *_ = self._transaction(
            [
                (
                    "INSERT INTO entries (session_id, kind, role, content, data, interrupted, created)"
                    " VALUES (?, 'message', ?, ?, ?, ?, ?)",
                    (session_id, *row, now),
                ),
                ("INSERT INTO entries_fts (rowid, text) VALUES (last_insert_rowid(), ?)", (text,)),
                (
                    "UPDATE sessions SET updated = ?, message_count = message_count + 1 WHERE id = ?",
                    (now, session_id),
                ),
                *self._title_update(session_id, message),
            ]
        )
        return entry_id

    @staticmethod
    def _title_update(session_id: str, message: Message) -> list[tuple[str, tuple[Any, ...]]]:
        """A session without a title takes it from its first user message."""
        if message.role != "user":
            return []
        sql = "UPDATE sessions SET title = ? WHERE id = ? AND title = ''"
        return [(sql, (title_from(message.content), session_id))]

    def save_draft(self, session_id: str, entry_id: int | None, text: str) -> int:
        """Keep the reply that is streaming, marked interrupted until finish_message replaces it."""
        if entry_id is None:
            return self.add_message(session_id, Message("assistant", text, interrupted=True))
        self._transaction(
            [
                ("UPDATE entries SET content = ? WHERE id = ?", (text, entry_id)),
                ("UPDATE entries_fts SET text = ? WHERE rowid = ?", (text, entry_id)),
            ]
        )
        return entry_id

    def finish_message(
        self, entry_id: int, message: Message, data: dict[str, Any] | None = None
    ) -> None:
        role, content, data_json, interrupted = _message_row(message, data)
        self._transaction(
            [
                (
                    "UPDATE entries SET role = ?, content = ?, data = ?, interrupted = ? WHERE id = ?",
                    (role, content, data_json, interrupted, entry_id),
                ),
                (
                    "UPDATE entries_fts SET text = ? WHERE rowid = ?",
                    (_search_text(message), entry_id),
                ),
            ]
        )

    def add_record(
        self, session_id: str, kind: str, data: dict[str, Any], content: str = ""
    ) -> int:
        """A non-message record: permission decision, compaction boundary, turn statistics."""
        now = time.time()
        entry_id, _ = self._transaction(
            [
                (
                    "INSERT INTO entries (session_id, kind, content, data, created) VALUES (?, ?, ?, ?, ?)",
                    (session_id, kind, content, json.dumps(data), now),
                ),
                ("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id)),
            ]
        )
        if kind == "compaction" and content:
            self._write("INSERT INTO entries_fts (rowid, text) VALUES (?, ?)", (entry_id, content))
        return entry_id

    def traces(self, session_id: str) -> list[list[dict[str, Any]]]:
        """The spans of each traced turn, oldest first (store/traces.py)."""
        self._require(session_id)
        rows = self._read(
            "SELECT data FROM entries WHERE session_id = ? AND kind = 'trace' ORDER BY id",
            (session_id,),
        )
        return [json.loads(row[0]).get("spans", []) for row in rows]

    def entries(self, session_id: str) -> list[Entry]:
        self._require(session_id)
        rows = self._read(
            "SELECT id, kind, role, content, data, interrupted, created FROM entries WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [
            Entry(
                r["id"],
                r["kind"],
                r["role"],
                r["content"],
                json.loads(r["data"]),
                bool(r["interrupted"]),
                r["created"],
            )
            for r in rows
        ]

    def system_prompt(self, session_id: str) -> str:
        """The system prompt a session started with (without reading its messages)."""
        session = self._read("SELECT system_prompt FROM sessions WHERE id = ?", (session_id,))
        if not session:
            raise SessionNotFoundError(
                f"no session with id {session_id!r}", "list sessions with `llamachat history list`"
            )
        return str(session[0]["system_prompt"])

    def load_conversation(self, session_id: str) -> Conversation:
        """The conversation as the model should continue it: the latest summary plus what was kept."""
        conversation = Conversation(system_prompt=self.system_prompt(session_id), id=session_id)
        entries = self.entries(session_id)
        start = 0
        for entry in entries:
            if entry.kind == "compaction":
                conversation.summaries = [entry.content]
                kept_from = entry.data.get("kept_from")
                start = int(kept_from) if kept_from else entry.id + 1
        messages = [e for e in entries if e.kind == "message" and e.id >= start]
        conversation.messages = [_message_from(e) for e in messages]
        calls = [c.id for e in entries if e.kind == "message" for c in _message_from(e).tool_calls]
        # Ids are call00001 now, call_1 in sessions saved before; a new call continues either.
        numbers = [int(m.group(1)) for c in calls if (m := re.fullmatch(r"(?:call_?)?(\d+)", c))]
        conversation.tool_calls_made = max(numbers, default=0)
        return conversation

    # --- search ---------------------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search over every message and tool result; one hit per session, newest first.

        Newest first (by entry id) rather than by relevance: FTS5 walks its index in rowid order,
        so no sort over every match is needed, and the session you were just in comes first.
        """
        match = _fts_query(query)
        if not match:
            return []
        rows = self._read(
            "SELECT e.session_id, s.title, s.updated, hit.rowid AS entry_id, hit.snippet FROM"
            " (SELECT rowid, snippet(entries_fts, 0, '[', ']', '…', 10) AS snippet FROM entries_fts"
            "  WHERE entries_fts MATCH ? ORDER BY rowid DESC LIMIT ?) AS hit"
            " JOIN entries e ON e.id = hit.rowid JOIN sessions s ON s.id = e.session_id"
            " ORDER BY hit.rowid DESC",
            (match, limit * 5),
        )
        hits: dict[str, SearchHit] = {}
        for row in rows:
            if row["session_id"] not in hits:
                hits[row["session_id"]] = SearchHit(
                    row["session_id"], row["title"], row["snippet"], row["entry_id"], row["updated"]
                )
        return list(hits.values())[:limit]


def _fts_query(query: str) -> str:
    """User words as an FTS5 query: every word must appear (prefix match on the last one)."""
    words = re.findall(r"\w+", query)
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _like_prefix(prefix: str) -> str:
    return re.sub(r"([%_\\])", r"\\\1", prefix) + "%"


def _message_row(message: Message, data: dict[str, Any] | None) -> tuple[str, str, str, int]:
    payload = dict(data or {})
    if message.tool_calls:
        payload["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ]
    if message.role == "tool":
        payload["tool_call_id"] = message.tool_call_id
        payload["name"] = message.name
    if message.reasoning:
        payload["reasoning"] = message.reasoning
    return (
        message.role,
        message.content,
        json.dumps(payload, ensure_ascii=False),
        int(message.interrupted),
    )


def _message_from(entry: Entry) -> Message:
    calls = [
        ToolCall(c["id"], c["name"], c.get("arguments", {}))
        for c in entry.data.get("tool_calls", [])
    ]
    return Message(
        cast(Role, entry.role),
        entry.content,
        calls,
        entry.data.get("tool_call_id", ""),
        entry.data.get("name", ""),
        entry.interrupted,
        reasoning=str(entry.data.get("reasoning", "")),
        store_id=entry.id,
    )


def _search_text(message: Message) -> str:
    calls = " ".join(
        f"{c.name} {json.dumps(c.arguments, ensure_ascii=False)}" for c in message.tool_calls
    )
    return f"{message.content} {calls}".strip()
