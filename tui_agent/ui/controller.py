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
from tui_agent.errors import LlamachatError
from tui_agent.events import Event, EventSink, Notice, ReasoningDelta, TextDelta
from tui_agent.store.recorder import SessionRecorder
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.base import (
    CallContext,
    PermissionDecision,
    ToolCall,
    ToolExecutor,
    ToolOutcome,
    ToolSpec,
)
from tui_agent.tools.setup import ToolStack
from tui_agent.ui.printable import printable_event

BackendLoader = Callable[[str | None], Callable[[EventSink], ModelBackend]]


class DeferredTools:
    """The tool gate, once the worker thread has built it; no tools before that."""

    def __init__(self) -> None:
        self.stack: ToolStack | None = None

    def specs(self) -> list[ToolSpec]:
        return self.stack.gate.specs() if self.stack else []

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        if self.stack is None:
            return ToolOutcome(False, "error: the tools are still starting")
        return self.stack.gate.execute(call, context)


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
    # Called on the worker thread when an event other than text arrives, so the app can show a
    # permission prompt or the end of a reply at once instead of at its next timer tick.
    wake: Callable[[], None] | None = None
    # Why the history could not be opened, when it could not (the chat then runs unsaved).
    history_problem: LlamachatError | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        model_spec: str | None,
        store: SessionStore | None,
        build_tool_stack: Callable[[], ToolStack],
        initial: Conversation | None = None,
    ) -> ChatController:
        """The real thing. Tools are built and started on the worker thread, before the model
        loads: importing the MCP SDK alone takes ~0.8 s here, which would delay the first frame."""
        tools = DeferredTools()

        def loader(spec: str | None) -> Callable[[EventSink], ModelBackend]:
            load_model = llama_backend_loader(config, spec)

            def load(sink: EventSink) -> ModelBackend:
                if tools.stack is None:
                    tools.stack = build_tool_stack()
                    for status in tools.stack.start():
                        if status.problem():
                            sink(Notice(status.problem()))
                return load_model(sink)

            return load

        return cls(config, loader, tools, store, model_spec, initial=initial)

    @property
    def model_label(self) -> str:
        return self.model_spec or self.config.model.source or "demo"

    def start(self) -> None:
        """Start the worker thread; commands given before this wait in its queue."""
        self._require().start()

    def _new_worker(self) -> AgentWorker:
        recorder = (
            SessionRecorder(self.store, self.model_label, os.getcwd()) if self.store else None
        )
        # Each worker writes to the queue that was current when it started: after a switch, the
        # old worker's late events (a stopped download's error) land in a queue nobody reads.
        events = self.events
        worker = AgentWorker(
            self.backend_loader(self.model_spec),
            self.tools,
            self.config.agent,
            sink=lambda event: self._deliver(event, events),
            recorder=recorder,
        )
        if self.initial is not None:
            worker.conversation = self.initial
        return worker

    def _deliver(self, event: Event, into: queue.Queue[Event] | None = None) -> None:
        (into or self.events).put(printable_event(event))
        # Streamed text waits for the next timer tick: a wake-up per token would cost a drain each.
        if self.wake is not None and not isinstance(event, TextDelta | ReasoningDelta):
            self.wake()

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.busy.is_set()

    @property
    def loading(self) -> bool:
        """The worker is still getting its model (starting tools, downloading, loading)."""
        return self.worker is not None and not self.worker.ready.is_set()

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
        self.events = queue.Queue()
        self.worker = self._new_worker()
        self.worker.start()

    def tool_specs(self) -> list[ToolSpec]:
        return self.tools.specs()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        stack = self.tool_stack or (
            self.tools.stack if isinstance(self.tools, DeferredTools) else None
        )
        if stack is not None:
            stack.close()

    def _require(self) -> AgentWorker:
        if self.worker is None:
            self.worker = self._new_worker()
        return self.worker
