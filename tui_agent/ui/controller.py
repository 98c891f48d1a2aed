"""What the app drives: the agent worker, the tools, the history store.

The app talks to the core only through this object and the typed events it hands out, so tests
can give it a scripted model and screenshots can replay a conversation.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from tui_agent.agent.backend import ModelBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.setup import llama_backend_loader
from tui_agent.agent.worker import AgentWorker, Compact, NewSession, ResumeSession, SendPrompt
from tui_agent.config import Config
from tui_agent.events import Event, EventSink, Notice
from tui_agent.store.recorder import SessionRecorder
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.base import PermissionDecision, ToolExecutor, ToolSpec
from tui_agent.tools.setup import ToolStack

BackendLoader = Callable[[str | None], Callable[[EventSink], ModelBackend]]


@dataclass
class ChatController:
    config: Config
    backend_loader: BackendLoader
    tools: ToolExecutor
    store: SessionStore | None = None
    model_spec: str | None = None
    tool_stack: ToolStack | None = None
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    worker: AgentWorker | None = None
    initial: Conversation | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        model_spec: str | None,
        store: SessionStore | None,
        tool_stack: ToolStack,
        initial: Conversation | None = None,
    ) -> ChatController:
        def loader(spec: str | None) -> Callable[[EventSink], ModelBackend]:
            load_model = llama_backend_loader(config, spec)

            def load(sink: EventSink) -> ModelBackend:
                # The tool servers start on the worker thread too, so the app is up at once.
                for status in tool_stack.start():
                    if status.state == "failed":
                        sink(Notice(f"MCP server {status.name!r} failed: {status.error}"))
                return load_model(sink)

            return load

        return cls(config, loader, tool_stack.gate, store, model_spec, tool_stack, initial=initial)

    @property
    def model_label(self) -> str:
        return self.model_spec or self.config.model.source or "demo"

    def start(self) -> None:
        recorder = (
            SessionRecorder(self.store, self.model_label, os.getcwd()) if self.store else None
        )
        self.worker = AgentWorker(
            self.backend_loader(self.model_spec),
            self.tools,
            self.config.agent,
            sink=self.events.put,
            recorder=recorder,
        )
        if self.initial is not None:
            self.worker.conversation = self.initial
        self.worker.start()

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.busy.is_set()

    @property
    def conversation(self) -> Conversation | None:
        return self.worker.conversation if self.worker else None

    def send(self, text: str) -> None:
        self._require().submit(SendPrompt(text))

    def cancel(self) -> None:
        self._require().cancel()

    def compact(self) -> None:
        self._require().submit(Compact())

    def new_session(self) -> None:
        self._require().submit(NewSession())

    def resume(self, session_id: str) -> Conversation:
        if self.store is None:
            raise RuntimeError("no history store")
        conversation = self.store.load_conversation(session_id)
        self._require().submit(ResumeSession(conversation))
        return conversation

    def reply_permission(self, request_id: str, decision: PermissionDecision) -> None:
        self._require().reply_permission(request_id, decision)

    def switch_model(self, spec: str) -> None:
        """Run a different model: the worker restarts with it, and a new session begins."""
        if self.worker is not None:
            self.worker.stop()
        self.model_spec = spec
        self.initial = None
        self.start()

    def tool_specs(self) -> list[ToolSpec]:
        return self.tools.specs()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.tool_stack is not None:
            self.tool_stack.close()

    def _require(self) -> AgentWorker:
        if self.worker is None:
            raise RuntimeError("the controller was not started")
        return self.worker
