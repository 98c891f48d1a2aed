"""A chat session's core, the same for every front end: the worker thread and the model it
loads, the tools, the history recorder.

A prompt's path, from the command line to the model::

    cli.py → the front end (ui/app.py, commands/headless.py)
      → Session.send (here: a command to the worker thread; typed events come back)
        → run_agent_loop (agent/loop.py, on the worker thread)
          → ModelBackend.stream (agent/backend.py, on engine/ and llama.cpp)

Front ends hold no core objects but this one and the events, so tests can give it a scripted
model and screenshots can replay a conversation. What else the UI needs of the core (the
history's types and its Markdown export, the model catalog, the numbers the status line shows)
it imports from here too, under the names imported ``as`` themselves below: the UI depends on
this module alone, and an import-linter contract holds it to that.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui_agent.agent.backend import LlamaBackend, ModelBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.remote_backend import remote_backend
from tui_agent.agent.worker import (
    AgentWorker,
    BackendFactory,
    Compact,
    NewSession,
    ResumeSession,
    SendPrompt,
    ToolChoice,
)
from tui_agent.config import AgentConfig, Config
from tui_agent.engine.remote import RemoteServer
from tui_agent.engine.remote import is_remote as is_remote
from tui_agent.engine.resident import current_rss as current_rss
from tui_agent.engine.resident import get_resident_model
from tui_agent.engine.state_files import remove_states
from tui_agent.errors import LlamachatError
from tui_agent.events import (
    Event,
    EventSink,
    ModelLoaded,
    Notice,
    PermissionDecision,
    ReasoningDelta,
    TextDelta,
    ignore_event,
)
from tui_agent.models.catalog import ModelChoice as ModelChoice
from tui_agent.models.catalog import choice_for as choice_for
from tui_agent.models.catalog import model_choices as model_choices
from tui_agent.models.memory import format_bytes as format_bytes
from tui_agent.models.sources import parse_model_spec as parse_model_spec
from tui_agent.models.sources import resolve_spec
from tui_agent.store.export import export_markdown as export_markdown
from tui_agent.store.recorder import SessionRecorder
from tui_agent.store.sessions import Entry as Entry
from tui_agent.store.sessions import SearchHit as SearchHit
from tui_agent.store.sessions import SessionStore as SessionStore
from tui_agent.store.sessions import SessionSummary as SessionSummary
from tui_agent.store.trace_export import OtlpExporter, exporter_from_config
from tui_agent.tools.base import CallContext, ToolCall, ToolExecutor, ToolOutcome, ToolSpec
from tui_agent.tools.spec_cache import load_specs, save_specs

if TYPE_CHECKING:  # building the tools imports pydantic and MCP: on their own thread, later
    from tui_agent.tools.setup import ToolStack

BackendLoader = Callable[[str | None], BackendFactory]


def llama_backend_loader(config: Config, model_spec: str | None) -> BackendFactory:
    """A backend factory for the worker: resolves, checks and loads the model when called (or
    checks the server, when the model is a URL)."""
    spec = model_spec or config.model.source or None
    if is_remote(spec):
        assert spec is not None
        return _remote_backend_loader(config, spec)

    def load(sink: EventSink) -> ModelBackend:
        _, path = resolve_spec(model_spec or config.model.source or None, sink)
        model = get_resident_model(path, config.model, sink)
        return LlamaBackend(model, tool_format=config.model.tool_format)

    return load


def _remote_backend_loader(config: Config, url: str) -> BackendFactory:
    def load(sink: EventSink) -> ModelBackend:
        settings = config.model
        server = RemoteServer.from_config(url, settings)
        started = time.perf_counter()
        info = server.check(sink, url)
        backend = remote_backend(server, info, settings)
        sink(
            ModelLoaded(
                backend.name,
                url,
                time.perf_counter() - started,
                backend.n_ctx,
                f"{info.kind}, {backend.wire}",
            )
        )
        return backend

    return load


class DeferredTools:
    """The tool gate, built and started on a thread of its own.

    With the list the same tool setup offered last time (tools/spec_cache.py), the tools start
    only when something needs them — a call, or the worker going idle (the user is typing) —
    and the loop is offered that list meanwhile: a headless prompt answered without a tool never
    pays for starting them. Without a list they start with the model's load and the loop waits
    for them. Calls always wait for the real gate. The UI, which must never wait, sees no tools
    until they are up.
    """

    def __init__(self, key: str = "") -> None:
        self.stack: ToolStack | None = None
        self.key = key  # "" keeps no list: the loop waits for the tools
        self._cached = load_specs(key) if key else None
        self._done = threading.Event()
        self._failure: BaseException | None = None
        self._notices: list[str] = []
        self._sink: EventSink = ignore_event
        self._build_stack: Callable[[], ToolStack] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def has_list(self) -> bool:
        return self._cached is not None

    def arm(self, build: Callable[[], ToolStack], sink: EventSink) -> None:
        """How to build the tools, and where their problems go; nothing starts yet."""
        self._build_stack, self._sink = build, sink

    def warm_up(self) -> None:
        """Build and start the tools on a thread, once (the worker calls this when idle)."""
        with self._lock:
            if self._thread is not None or self._build_stack is None:
                return
            self._thread = threading.Thread(
                target=self._build, args=(self._build_stack,), name="llamachat-tools", daemon=True
            )
            self._thread.start()

    def _build(self, build: Callable[[], ToolStack]) -> None:
        try:
            stack = build()
            self._notices += [p for status in stack.start() if (p := status.problem())]
            self.stack = stack
            if self.key and (specs := stack.gate.specs()) != self._cached:
                save_specs(self.key, specs)
        except BaseException as exc:  # raised again on the worker thread, where it is reported
            self._failure = exc
        finally:
            self._done.set()

    def wait(self) -> ToolStack | None:
        """The started tools (on the worker thread); raises what building them raised."""
        self.warm_up()
        if self._thread is None:
            return self.stack
        self._done.wait()
        self._say_problems()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        return self.stack

    def _say_problems(self) -> None:
        notices, self._notices = self._notices, []
        for notice in notices:
            self._sink(Notice(notice))

    def specs(self) -> list[ToolSpec]:
        if not self._done.is_set() and self._cached is not None:
            return self._cached
        stack = self.wait()  # a failure to start them is raised here, on the next model call
        return stack.gate.specs() if stack else []

    def shown_specs(self) -> list[ToolSpec]:
        """What the UI shows: the tools once they are up, nothing before."""
        return self.stack.gate.specs() if self.stack else []

    def policy_of(self, spec: ToolSpec) -> str:
        return self.stack.gate.policy_of(spec) if self.stack else ""

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        stack = self.wait()
        if stack is None:
            return ToolOutcome(False, "error: the tools are still starting")
        return stack.gate.execute(call, context)

    def close(self) -> None:
        if self._thread is not None:
            self._done.wait(30)
        if self.stack is not None:
            self.stack.close()


@dataclass
class Session:
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
    # Whether streamed text wakes it too: `serve` sends each token as it comes.
    wake_on_text: bool = False
    # Why the history could not be opened, when it could not (the chat then runs unsaved).
    history_problem: LlamachatError | None = None
    # Headless: nobody can answer a permission question, so a call that would ask is denied.
    ask_user: bool = True
    system_prompt: str | None = None
    # Whether the conversation is recorded in the store (a resumed headless run may not be).
    save: bool = True
    # Sends the spans of each saved turn to a collector ([traces] otlp_endpoint).
    trace_exporter: OtlpExporter | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        model_spec: str | None,
        store: SessionStore | None,
        build_tool_stack: Callable[[], ToolStack],
        initial: Conversation | None = None,
        tools_key: str = "",
    ) -> Session:
        """The real thing. Tools are built and started on a thread of their own while the worker
        loads the model: importing the MCP SDK alone takes ~0.5 s here. With ``tools_key`` (see
        tools/spec_cache.py) and a list saved under it, the model loads first and the first
        prompt does not wait for the tools at all."""
        tools = DeferredTools(tools_key)

        def loader(spec: str | None) -> Callable[[EventSink], ModelBackend]:
            load_model = llama_backend_loader(config, spec)

            def load(sink: EventSink) -> ModelBackend:
                tools.arm(build_tool_stack, sink)
                if tools.has_list:  # they start when needed (DeferredTools)
                    return load_model(sink)
                tools.warm_up()
                backend = load_model(sink)
                tools.wait()  # a bad rule is said now, before the first prompt
                return backend

            return load

        session = cls(config, loader, tools, store, model_spec, initial=initial)
        session.trace_exporter = exporter_from_config(
            config.traces, lambda problem: session._deliver(Notice(problem))
        )
        return session

    @property
    def model_label(self) -> str:
        return self.model_spec or self.config.model.source or "demo"

    def start(self) -> None:
        """Start the worker thread; commands given before this wait in its queue."""
        if self.initial is not None:
            self._say_if_made_on_another_model(self.initial.id)
        self._require().start()

    def _say_if_made_on_another_model(self, session_id: str) -> None:
        """A resumed session made on another model continues on this one: said, not silent."""
        if self.store is None or not self.store.exists(session_id):
            return
        made_on = self.store.get_session(session_id).model
        if made_on and made_on != self.model_label:
            self._deliver(
                Notice(f"this session was made on {made_on}; it continues on {self.model_label}")
            )

    def _new_worker(self) -> AgentWorker:
        recorder = (
            SessionRecorder(self.store, self.model_label, os.getcwd(), self.trace_exporter)
            if self.store and self.save
            else None
        )
        # Each worker writes to the queue that was current when it started: after a switch, the
        # old worker's late events (a stopped download's error) land in a queue nobody reads.
        events = self.events
        worker = AgentWorker(
            self.backend_loader(self.model_spec),
            self.tools,
            self.config.agent,
            self.system_prompt,
            sink=lambda event: self._deliver(event, events),
            ask_user=self.ask_user,
            recorder=recorder,
        )
        if self.initial is not None:
            worker.conversation = self.initial
        return worker

    def _deliver(self, event: Event, into: queue.Queue[Event] | None = None) -> None:
        (into or self.events).put(event)
        # The app's text waits for its next timer tick: a wake-up per token would cost a drain each.
        if self.wake is not None and (
            self.wake_on_text or not isinstance(event, TextDelta | ReasoningDelta)
        ):
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

    def send(
        self,
        text: str,
        force_tools: list[str] | None = None,
        settings: AgentConfig | None = None,
        tool_choice: ToolChoice = "auto",
    ) -> None:
        """Run a prompt; ``force_tools`` (names) makes the first model call a call of one;
        ``settings`` replace the configured sampling and limits for this prompt; ``tool_choice``
        "none" offers no tools, "required" forces a call of any."""
        self._require().submit(SendPrompt(text, force_tools or [], settings, tool_choice))

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
        self._say_if_made_on_another_model(session_id)
        self.adopt(conversation)
        return conversation

    def adopt(self, conversation: Conversation) -> None:
        """Continue ``conversation`` (made by the caller, or loaded from history) from the next
        prompt on; the worker owns it from here."""
        self._require().submit(ResumeSession(conversation))

    def reply_permission(self, request_id: str, decision: PermissionDecision) -> None:
        self._require().reply_permission(request_id, decision)

    def switch_model(self, spec: str) -> None:
        """Run a different model: the worker restarts with it, and a new session begins. It
        waits for the old worker to stop, so front ends call it off their event loop; commands
        given meanwhile go to the new worker and run once it has loaded."""
        old = self.worker
        self.model_spec = spec
        self.initial = None
        self.events = queue.Queue()
        self.worker = self._new_worker()
        if old is not None:
            old.stop()
        self.worker.start()

    def recent_prompts(self) -> list[str]:
        """Prompts sent in earlier sessions, oldest first: Up recalls them after a restart."""
        return self.store.recent_prompts() if self.store is not None else []

    def tool_specs(self) -> list[ToolSpec]:
        if isinstance(self.tools, DeferredTools):
            return self.tools.shown_specs()
        return self.tools.specs()

    def tool_policies(self) -> list[tuple[ToolSpec, str]]:
        """Each tool and what a call of it gets: "allow", "ask" or "deny" ("" when unknown)."""
        policy_of = getattr(self.tools, "policy_of", None)
        return [(spec, policy_of(spec) if policy_of else "") for spec in self.tool_specs()]

    def saved_session_id(self) -> str | None:
        """The id the conversation is saved under; None when nothing of it was saved."""
        conversation = self.conversation
        if not self.save or self.store is None or conversation is None:
            return None
        return conversation.id if self.store.exists(conversation.id) else None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.trace_exporter is not None:  # the last turn's spans, if still on their way
            self.trace_exporter.close()
        if self.tool_stack is not None:
            self.tool_stack.close()
        if isinstance(self.tools, DeferredTools):
            self.tools.close()

    def _require(self) -> AgentWorker:
        if self.worker is None:
            self.worker = self._new_worker()
        return self.worker


def delete_saved_session(store: SessionStore, session_id: str) -> None:
    """Delete a session from the history, and the model states saved for it: they hold its
    conversation too."""
    store.delete_session(session_id)
    remove_states({session_id})
