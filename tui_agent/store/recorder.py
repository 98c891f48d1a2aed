"""Save a conversation as it happens, from the same events the front ends see.

Runs on the agent worker thread. Finished messages are committed as soon as the loop appends
them; the reply that is streaming is saved as an interrupted draft about twice a second, so a
crash (even kill -9) loses at most the last half second of it.
"""

from __future__ import annotations

import dataclasses
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

DRAFT_INTERVAL_SECONDS = 0.5


class SessionRecorder:
    def __init__(self, store: SessionStore, model: str = "", workspace: str = "") -> None:
        self.store = store
        self.model = model
        self.workspace = workspace
        self._known: set[str] = set()
        self._draft_id: int | None = None
        self._draft_text = ""
        self._draft_saved_at = 0.0
        self._tool_results: dict[str, dict[str, Any]] = {}

    def observe(self, event: Event, conversation: Conversation) -> None:
        if isinstance(event, TextDelta):
            self._draft(conversation, event.text)
            return
        if isinstance(event, SessionChanged):
            self._reset_draft()
            return
        if isinstance(event, ReasoningDelta):  # saved with its message; nothing to do per token
            return
        if isinstance(event, ToolResult):
            self._tool_results[event.call_id] = {"success": event.success, "denied": event.denied}
        self.sync(conversation)
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
            if message.role == "assistant" and self._draft_id is not None:
                self.store.finish_message(self._draft_id, message, data)
                message.store_id = self._draft_id
                self._reset_draft()
            else:
                message.store_id = self.store.add_message(conversation.id, message, data)

    def _draft(self, conversation: Conversation, text: str) -> None:
        self._draft_text += text
        now = time.monotonic()
        if now - self._draft_saved_at < DRAFT_INTERVAL_SECONDS:
            return
        self.sync(conversation)  # the user's message first, so history stays in order
        self._ensure_session(conversation)
        self._draft_id = self.store.save_draft(conversation.id, self._draft_id, self._draft_text)
        self._draft_saved_at = now

    def _reset_draft(self) -> None:
        self._draft_id, self._draft_text, self._draft_saved_at = None, "", 0.0

    def _ensure_session(self, conversation: Conversation) -> None:
        if conversation.id in self._known:
            return
        if not self.store.exists(conversation.id):
            self.store.create_session(conversation, self.model, self.workspace)
        self._known.add(conversation.id)
