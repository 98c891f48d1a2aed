"""The agent worker thread: owns the model, runs one command at a time, sends events out.

Only this thread touches the ``Llama`` object (it is not thread-safe). Front ends submit commands
and read events from a thread-safe queue. Cancel and permission replies do not wait in the command
queue: they act at once on the command that is running.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tui_agent.agent.backend import LlamaBackend, ModelBackend, SavesState
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.loop import LoopControl, compact_now, context_tokens, run_agent_loop
from tui_agent.config import AgentConfig
from tui_agent.errors import ConfigError, LlamachatError, LoadCancelled
from tui_agent.events import (
    Completed,
    DownloadProgress,
    Error,
    Event,
    EventSink,
    ModelLoadProgress,
    Notice,
    PermissionDecision,
    PermissionRequest,
    SessionChanged,
)
from tui_agent.tools.base import NoTools, ToolExecutor, ToolSpec

log = logging.getLogger(__name__)

# Seconds without a new command after a turn before the model's state is saved: a prompt sent
# at once (a script, a queued prompt) is not held up by the copy (0.024 s for 1,500 tokens here).
IDLE_BEFORE_SAVING = 0.3


ToolChoice = Literal["auto", "none", "required"]


@dataclass(frozen=True)
class SendPrompt:
    text: str
    # Tool names: the first model call must be a call of one (grammar-constrained).
    force_tools: list[str] = field(default_factory=list)
    # This prompt's sampling and limits, instead of the worker's (a request to `serve` sets them).
    settings: AgentConfig | None = None
    # "none" offers the model no tools this prompt; "required" makes its first call a call of
    # any of them (the Responses API's tool_choice).
    tool_choice: ToolChoice = "auto"


@dataclass(frozen=True)
class Compact:
    pass


@dataclass(frozen=True)
class NewSession:
    system_prompt: str | None = None


@dataclass(frozen=True)
class ResumeSession:
    conversation: Conversation


Command = SendPrompt | Compact | NewSession | ResumeSession


@dataclass
class _PendingPermission:
    answered: threading.Event = field(default_factory=threading.Event)
    decision: PermissionDecision | None = None


BackendFactory = Callable[[EventSink], ModelBackend]


class Recorder(Protocol):
    def observe(self, event: Event, conversation: Conversation) -> None: ...

    def close(self) -> None: ...


class AgentWorker:
    def __init__(
        self,
        load_backend: BackendFactory,
        tools: ToolExecutor | None = None,
        config: AgentConfig | None = None,
        system_prompt: str | None = None,
        sink: EventSink | None = None,
        ask_user: bool = True,
        recorder: Recorder | None = None,
    ) -> None:
        """``load_backend`` runs on the worker thread, so the model is created where it is used.

        With ``ask_user=False`` (headless) a permission prompt is denied at once instead of waiting.
        """
        self.events: queue.Queue[Event] = queue.Queue()
        self._out = sink or self.events.put
        self._recorder = recorder
        self._load_backend = load_backend
        self.tools = tools or NoTools()
        self.config = config or AgentConfig()
        self._system_prompt = system_prompt
        self._ask_user = ask_user
        self._commands: queue.Queue[Command | None] = queue.Queue()
        self._control = LoopControl(ask=self._ask)
        self._pending: dict[str, _PendingPermission] = {}
        self._lock = threading.Lock()
        self.backend: ModelBackend | None = None
        self.conversation = self._new_conversation(system_prompt)
        self._state_due = False  # a turn ran since the model's state was last saved
        self.ready = threading.Event()
        self.busy = threading.Event()
        self._thread = threading.Thread(target=self._main, name="llamachat-agent", daemon=True)

    # --- called from any thread -------------------------------------------------------------

    def start(self) -> AgentWorker:
        self._thread.start()
        return self

    def submit(self, command: Command) -> None:
        self._commands.put(command)

    def cancel(self) -> None:
        """Stop the running prompt within one token; queued prompts are dropped too."""
        self._drain_queued_prompts()
        self._control.cancel.set()
        backend = self.backend
        if backend is not None:  # a prompt being read in stops now, not after its batch
            backend.interrupt()
        with self._lock:
            for pending in self._pending.values():
                pending.answered.set()

    def reply_permission(self, request_id: str, decision: PermissionDecision) -> None:
        with self._lock:
            pending = self._pending.get(request_id)
        if pending is not None:
            pending.decision = decision
            pending.answered.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.cancel()
        self._commands.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the worker thread ------------------------------------------------------------------

    def _sink(self, event: Event) -> None:
        """Every event passes the recorder (on this thread) before it goes out."""
        if self._recorder is not None and self.conversation.saved:
            try:
                self._recorder.observe(event, self.conversation)
            except Exception as exc:  # a full disk must not stop the chat; the user is told
                self._out(
                    Error(
                        f"could not save the session: {exc}",
                        "check the disk and [history] db_path",
                        "history",
                    )
                )
        self._out(event)

    def _emit(self, event: Event) -> None:
        self._sink(event)

    def _loading_sink(self, event: Event) -> None:
        """The sink for resolving and loading the model: after cancel() (Esc, a switch to
        another model, quitting) the next progress event stops the download or the load."""
        if self._control.cancel.is_set():
            if isinstance(event, DownloadProgress):
                raise LoadCancelled(
                    f"download of {event.filename} stopped",
                    "nothing of it is kept (a later try starts over)",
                )
            if isinstance(event, ModelLoadProgress):
                raise LoadCancelled(f"loading {event.model} stopped")
        self._sink(event)

    def _main(self) -> None:
        try:
            self.backend = self._load_backend(self._loading_sink)
        except LlamachatError as exc:
            self._emit(Error.of(exc))
            self._emit(Completed("cancelled" if isinstance(exc, LoadCancelled) else "error"))
            return
        except (
            Exception
        ) as exc:  # a bug while loading must still reach the user, not kill the thread silently
            self._emit(
                Error(
                    f"internal error while loading: {type(exc).__name__}: {exc}",
                    "please report this with the output of --debug",
                    "internal",
                )
            )
            self._emit(Completed("error"))
            return
        finally:
            self.ready.set()
        self._track_session()
        if self.conversation.messages:  # started on a saved session (--continue, --resume)
            self._resumed()
        while (command := self._next_command()) is not None:
            self._control.cancel.clear()
            self.busy.set()
            try:
                self._run(command)
            except LlamachatError as exc:
                self._emit(Error.of(exc))
                self._emit(Completed("error"))
            except Exception as exc:  # a bug must not kill the thread that owns the model
                self._emit(
                    Error(
                        f"internal error: {type(exc).__name__}: {exc}",
                        "please report this with --debug output",
                        "internal",
                    )
                )
                self._emit(Completed("error"))
            finally:
                self.busy.clear()
        if self._state_due:  # quitting right after a turn (headless -p always does)
            self._keep_state()
        if isinstance(self.backend, SavesState):
            self.backend.finish_saving()
        if self._recorder is not None:
            self._recorder.close()

    def _next_command(self) -> Command | None:
        """The next command; once the worker has been idle a moment, what can wait for that is
        done first (a prompt sent at once is not held up by it)."""
        try:
            return self._commands.get(timeout=IDLE_BEFORE_SAVING)
        except queue.Empty:
            if self._state_due:
                self._keep_state()
            warm_up = getattr(self.tools, "warm_up", None)
            if warm_up is not None:  # tools that start when needed: the user is typing
                warm_up()
        return self._commands.get()

    def _keep_state(self) -> None:
        self._state_due = False
        if not isinstance(self.backend, SavesState):
            return
        try:
            self.backend.keep_state()
        except Exception:  # a state is a cache: failing to save it must not stop the chat
            log.exception("saving the model state failed")
        for notice in self.backend.state_notices():
            self._emit(Notice(notice))

    def _run(self, command: Command) -> None:
        assert self.backend is not None
        # Still due after a /new or a resume: the live cache holds the turn until a prompt
        # replaces it, and its state is named after the session of that turn.
        # A conversation that is not saved leaves no model state on disk either.
        self._state_due = self._state_due or (
            isinstance(command, SendPrompt | Compact) and self.conversation.saved
        )
        if isinstance(command, SendPrompt):
            run_agent_loop(
                self.backend,
                self.conversation,
                command.text,
                NoTools() if command.tool_choice == "none" else self.tools,
                command.settings or self.config,
                self._sink,
                self._control,
                self._forced(command.force_tools, command.tool_choice),
            )
        elif isinstance(command, Compact):
            compact_now(
                self.backend, self.conversation, self.tools, self.config, self._sink, self._control
            )
        elif isinstance(command, NewSession):
            self.conversation = self._new_conversation(command.system_prompt or self._system_prompt)
            self._track_session()
            self._emit(SessionChanged(self.conversation.id, resumed=False))
        elif isinstance(command, ResumeSession):
            self.conversation = command.conversation
            self._track_session()
            self._resumed()

    def _forced(self, names: list[str], choice: ToolChoice) -> list[ToolSpec] | None:
        """The tools a prompt must call, from their names (checked once the tools are up)."""
        if choice == "required" and not names:
            if not (every := self.tools.specs()):
                raise ConfigError(
                    "a tool call was required (tool_choice), but this run offers no tools",
                    "configure MCP servers or built-in tools (`llamachat tools list`)",
                )
            return every
        if not names:
            return None
        specs = {s.name: s for s in self.tools.specs()}
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise ConfigError(
                f"{unknown[0]!r} is not a tool this run can use without asking, so no call of it"
                " can be forced",
                f"available: {', '.join(specs)}; an allow rule offers another",
            )
        return [specs[n] for n in names]

    def _ask(self, request: PermissionRequest) -> PermissionDecision:
        """Called by the tool gate on this thread: wait for the user's answer (or a cancel)."""
        if not self._ask_user:
            return PermissionDecision(
                False, "headless", "headless mode cannot ask; use --allow RULE"
            )
        pending = _PendingPermission()
        with self._lock:
            # cancel() sets the flag before it answers the pending questions under this lock:
            # an Esc that came before this question was registered is seen here.
            if self._control.cancel.is_set():
                return PermissionDecision(False, "cancelled", "the prompt was cancelled")
            self._pending[request.request_id] = pending
        self._emit(request)
        pending.answered.wait()
        with self._lock:
            self._pending.pop(request.request_id, None)
        if pending.decision is None:
            return PermissionDecision(False, "cancelled", "the prompt was cancelled")
        return pending.decision

    def _resumed(self) -> None:
        """Say which saved conversation runs now, and how much of the context it fills."""
        assert self.backend is not None
        try:
            tokens = context_tokens(self.backend, self.conversation, self.tools, self.config)
        except LlamachatError:  # a template that fails says so on the next turn
            tokens = 0
        self._emit(SessionChanged(self.conversation.id, resumed=True, context_tokens=tokens))

    def _new_conversation(self, system_prompt: str | None) -> Conversation:
        return Conversation(system_prompt=system_prompt) if system_prompt else Conversation()

    def _track_session(self) -> None:
        if isinstance(self.backend, LlamaBackend):
            self.backend.model.active_sessions.add(self.conversation.id)
        if isinstance(self.backend, SavesState):
            self.backend.session = self.conversation.id

    def _drain_queued_prompts(self) -> None:
        kept: list[Command | None] = []
        dropped = 0
        while True:
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, SendPrompt):
                dropped += 1
            else:
                kept.append(item)
        for item in kept:
            self._commands.put(item)
        if dropped:
            self._emit(Notice(f"{dropped} queued prompt(s) dropped by the cancel"))


def one_shot(
    backend: ModelBackend, system_prompt: str, user_prompt: str, config: AgentConfig | None = None
) -> str:
    """A fresh, isolated session on the resident model: system + user in, final text out."""
    conversation = Conversation(system_prompt=system_prompt)
    events: list[Event] = []
    completed = run_agent_loop(
        backend, conversation, user_prompt, NoTools(), config or AgentConfig(), events.append
    )
    errors = [e for e in events if isinstance(e, Error)]
    if errors:
        raise LlamachatError(errors[0].message, errors[0].hint)
    return completed.text
