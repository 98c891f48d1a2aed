"""Save a conversation as it happens, from the same events the front ends see.

Runs on the agent worker thread. Finished messages are committed as soon as the loop appends
them; the reply that is streaming is saved as an interrupted draft about twice a second, so a
crash (even kill -9) loses at most the last half second of it. Text that arrives within half a
second of the last save is written by a timer thread half a second after that save: on a busy
CPU the next token may be seconds away, and waiting for it would lose more.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from typing import Any

from tui_agent.agent.conversation import Conversation
from tui_agent.events import (
    ContextCompacted,
    Event,
    PermissionResult,
    ReasoningDelta,
    SessionChanged,
    TextDelta,
    ToolResult,
    TurnStatistics,
)
from tui_agent.store.sessions import SessionStore
from tui_agent.store.trace_export import OtlpExporter
from tui_agent.store.traces import TurnTracer

DRAFT_INTERVAL_SECONDS = 0.5


class SessionRecorder:
    def __init__(
        self,
        store: SessionStore,
        model: str = "",
        workspace: str = "",
        exporter: OtlpExporter | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.workspace = workspace
        self.exporter = exporter  # sends each turn's spans on, when configured
        self._known: set[str] = set()
        self._draft_id: int | None = None
        self._draft_text = ""
        self._draft_saved_at = 0.0
        self._draft_saved_text = ""
        # The draft is shared with the timer thread: the worker finishes or resets it while a
        # timer may be about to save it, and a finished message must never be written over.
        self._draft_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._draft_session = ""
        self._failure: sqlite3.Error | None = None  # the timer's, for the worker to report
        self._tool_results: dict[str, dict[str, Any]] = {}
        self._tracer = TurnTracer()

    def close(self) -> None:
        """Save what the timer would have saved, and stop it (the worker is ending)."""
        with self._draft_lock:
            self._cancel_timer()
        self._flush()

    def observe(self, event: Event, conversation: Conversation) -> None:
        if isinstance(event, TextDelta):
            self._draft(conversation, event.text)
            return
        if isinstance(event, SessionChanged):
            with self._draft_lock:
                self._reset_draft()
            return
        if isinstance(event, ReasoningDelta):  # saved with its message; nothing to do per token
            return
        if isinstance(event, ToolResult):
            self._tool_results[event.call_id] = {"success": event.success, "denied": event.denied}
        spans = self._tracer.observe(event)
        self.sync(conversation)
        if spans is not None and self.store.exists(conversation.id):
            self.store.add_record(conversation.id, "trace", {"spans": spans})
            if self.exporter is not None:
                self.exporter.export(conversation.id, self.model, spans)
        if isinstance(event, PermissionResult):
            self.store.add_record(conversation.id, "permission", dataclasses.asdict(event))
        elif isinstance(event, TurnStatistics):
            self.store.add_record(conversation.id, "stats", dataclasses.asdict(event))
        elif isinstance(event, ContextCompacted):
            first = conversation.messages[0].store_id if conversation.messages else None
            data = {**dataclasses.asdict(event), "kept_from": first}
            data.pop("summary")
            self.store.add_record(conversation.id, "compaction", data, content=event.summary)

    def sync(self, conversation: Conversation) -> None:
        """Store every message the conversation has that the store does not."""
        pending = [m for m in conversation.messages if m.store_id is None]
        if not pending:
            return
        self._ensure_session(conversation)
        for message in pending:
            data = (
                self._tool_results.pop(message.tool_call_id, None)
                if message.role == "tool"
                else None
            )
            with self._draft_lock:
                draft = self._draft_id if message.role == "assistant" else None
                if draft is not None:
                    self.store.finish_message(draft, message, data)
                    message.store_id = draft
                    self._reset_draft()
            if draft is None:
                message.store_id = self.store.add_message(conversation.id, message, data)

    def _draft(self, conversation: Conversation, text: str) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        with self._draft_lock:
            self._draft_text += text
            due = self._draft_saved_at + DRAFT_INTERVAL_SECONDS - time.monotonic()
            if self._draft_id is not None:
                if due > 0:
                    if self._timer is None:
                        self._timer = threading.Timer(due, self._flush)
                        self._timer.daemon = True
                        self._timer.start()
                    return
                self._save_draft(conversation.id)
                return
        # The first piece of a reply: the user's message first, so history stays in order.
        self.sync(conversation)
        self._ensure_session(conversation)
        with self._draft_lock:
            self._save_draft(conversation.id)
            self._draft_session = conversation.id

    def _save_draft(self, session_id: str) -> None:
        """Write the draft as it is now (the draft lock is held)."""
        self._draft_id = self.store.save_draft(session_id, self._draft_id, self._draft_text)
        self._draft_saved_at, self._draft_saved_text = time.monotonic(), self._draft_text

    def _flush(self) -> None:
        """The timer: save text that arrived since the last save, if the reply is still going."""
        with self._draft_lock:
            self._timer = None
            if self._draft_id is None or self._draft_text == self._draft_saved_text:
                return
            try:
                self._save_draft(self._draft_session)
            except sqlite3.ProgrammingError:  # the store was closed under a worker that hung
                pass
            except sqlite3.Error as exc:  # raised on the worker thread, which tells the user
                self._failure = exc

    def _reset_draft(self) -> None:
        """Forget the draft (the draft lock is held): finished, or a new session."""
        self._cancel_timer()
        self._draft_id, self._draft_text, self._draft_saved_text = None, "", ""
        self._draft_saved_at = 0.0

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _ensure_session(self, conversation: Conversation) -> None:
        if conversation.id in self._known:
            return
        if not self.store.exists(conversation.id):
            self.store.create_session(conversation, self.model, self.workspace)
        self._known.add(conversation.id)
