"""One model, many clients: the turns that HTTP requests start, in line for the one worker.

The resident model generates one reply at a time, so a request's turn waits in line (FIFO)
until the turn before it has finished. A turn may outlive its first HTTP response: a tool call
that asks ends that response with an approval request, and the turn waits, holding the model,
until a follow-up request answers (or the approval times out and the call is denied). The
worker wakes this asyncio loop when it has events (one wake-up for all that arrive before the
loop gets to them); the loop shows them to the response of the turn that holds the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tui_agent.agent.conversation import Conversation
from tui_agent.events import (
    Completed,
    DownloadProgress,
    Error,
    Event,
    IterationStart,
    ModelLoaded,
    ModelLoadProgress,
    PermissionDecision,
    PermissionRequest,
)
from tui_agent.serve.requests import Approval, BadRequest, TurnRequest
from tui_agent.serve.responses import Payload, ResponseBuilder
from tui_agent.session import Session

# How often a stream that has nothing to say says it is still there: a queued request shows it
# is waiting, and a client that went away is noticed when the write fails.
KEEPALIVE_SECONDS = 2.0


@dataclass
class Health:
    status: Literal["loading", "ready", "failed"] = "loading"
    progress: float | None = None
    model: str = ""
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "model": self.model}
        if self.status == "loading" and self.progress is not None:
            data["progress"] = round(self.progress, 3)
        if self.error:
            data["error"] = self.error
        return data


@dataclass
class _Listener:
    """One HTTP response showing a turn: its builder and the stream events for it (None ends)."""

    builder: ResponseBuilder
    events: asyncio.Queue[Payload | None] = field(default_factory=asyncio.Queue)


@dataclass
class Turn:
    request: TurnRequest
    session: str
    conversation: Conversation | None = None  # a new one, made here; None continues `session`
    listener: _Listener | None = None
    waiting_on: str = ""  # the approval request the turn waits for
    timer: asyncio.TimerHandle | None = None
    running: bool = False  # it holds the model
    prompt_started: bool = False  # the worker runs its prompt (a cancel now reaches it)
    cancel_pending: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Reply:
    """What a request gets: the response it builds and the stream of its events."""

    def __init__(self, desk: Desk, turn: Turn, listener: _Listener, first: list[Payload]) -> None:
        self.desk, self.turn, self.listener, self._first = desk, turn, listener, first

    @property
    def response(self) -> ResponseBuilder:
        return self.listener.builder

    async def events(self) -> AsyncGenerator[Payload | None, None]:
        """The stream events; None now and then while there is nothing to say. A client that
        stops reading (the generator is closed or cancelled) cancels the turn."""
        try:
            for payload in self._first:
                yield payload
            while True:
                try:
                    event = await asyncio.wait_for(
                        self.listener.events.get(), timeout=KEEPALIVE_SECONDS
                    )
                except TimeoutError:
                    yield None
                    continue
                if event is None:
                    return
                yield event
        finally:
            if not self.response.finished:
                self.desk.abandon(self.turn)


class Desk:
    def __init__(self, session: Session, approval_timeout: float) -> None:
        self.session = session
        self.approval_timeout = approval_timeout
        self.health = Health(model=session.model_label)
        self._line = asyncio.Lock()  # asyncio's lock wakes its waiters in order
        self._ready = asyncio.Event()  # the model has loaded, or failed to
        self._current: Turn | None = None
        self._paused: dict[str, Turn] = {}  # response id → the turn waiting for its answer
        self._serial = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_due = False  # a drain of the worker's events is on the loop's list

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker (it loads the model now); its events wake this loop."""
        self._loop = asyncio.get_running_loop()
        self.session.wake = self._wake
        self.session.wake_on_text = True
        self.session.start()

    def close(self) -> None:
        self.session.close()  # a turn waiting for an approval is cancelled, and saved as it is

    def _wake(self) -> None:
        """On the worker thread, after it queued an event. The flag is cleared before the drain
        reads the queue, so an event queued meanwhile is read by it or wakes the loop again."""
        if self._drain_due:
            return
        self._drain_due = True
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_due = False
        events: queue.Queue[Event] = self.session.events
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return
            self._on_event(event)

    # --- requests ----------------------------------------------------------------------------

    def open(self, request: TurnRequest) -> Reply:
        """Start (or, with approvals, go on with) a turn; raises BadRequest for what cannot run."""
        if self.health.status == "failed":
            raise BadRequest(f"the model could not be loaded: {self.health.error}", status=503)
        if request.approvals:
            return self._answer(request)
        session = request.session or ""
        conversation = None
        if request.session is None:
            system = request.system or self.session.system_prompt  # serve --system
            conversation = Conversation(system_prompt=system) if system else Conversation()
            conversation.messages = list(request.history)
            conversation.saved = request.store
            session = conversation.id
        else:
            self._check_session(request.session)
            self._check_instructions(request)
        turn = Turn(request, session, conversation)
        listener = self._listener(turn)
        first = listener.builder.created(queued=self._line.locked())
        turn.task = asyncio.get_running_loop().create_task(self._drive(turn))
        return Reply(self, turn, listener, first)

    def abandon(self, turn: Turn) -> None:
        """The client went away: a running turn stops (within a token); a queued one leaves."""
        if turn.finished.is_set():
            return
        if turn.running:
            turn.listener = None
            # A cancel before the worker took the prompt would drop it unanswered (and during
            # the model's load, stop the load): it waits for the prompt to start.
            if turn.prompt_started:
                self.session.cancel()
            else:
                turn.cancel_pending = True
        elif turn.task is not None:
            turn.task.cancel()

    def _check_session(self, session: str) -> None:
        live = self.session.conversation
        store = self.session.store
        if live is not None and live.id == session and not live.saved:
            raise BadRequest(
                f"session {session} was made with store: false and is not kept: send the whole"
                " conversation as input instead",
                "previous_response_id",
                status=404,
            )
        known = (live is not None and live.id == session) or (
            store is not None and store.exists(session)
        )
        if not known:
            raise BadRequest(
                f"no saved session {session!r}: it was deleted, or never saved (serve --no-save)",
                "previous_response_id",
                status=404,
            )
        for turn in self._paused.values():
            if turn.session == session:
                raise BadRequest(
                    f"session {session} waits for an answer to approval request"
                    f" {turn.waiting_on}: send an mcp_approval_response first",
                    "input",
                    status=409,
                )

    def _check_instructions(self, request: TurnRequest) -> None:
        """Clients that send their instructions with every request may go on doing so; other
        instructions would rewrite the start of the prompt (and lose the model's cache of it)."""
        if request.system is None or request.session is None:
            return
        live = self.session.conversation
        if live is not None and live.id == request.session:
            current = live.system_prompt
        else:
            assert self.session.store is not None  # _check_session found the session there
            current = self.session.store.system_prompt(request.session)
        if request.system != current:
            raise BadRequest(
                "a continued session keeps the instructions it started with: send the same"
                " instructions or none (or start a new session without previous_response_id)",
                "instructions",
            )

    def _listener(self, turn: Turn) -> _Listener:
        response_id = f"resp_{turn.session}_{next(self._serial)}{uuid.uuid4().hex[:6]}"
        builder = ResponseBuilder(response_id, self.health.model, turn.session, turn.request)
        listener = _Listener(builder)
        turn.listener = listener
        return listener

    async def _drive(self, turn: Turn) -> None:
        """Wait in line for the model, run the turn, hold the model until it has finished."""
        async with self._line:
            self._current, turn.running = turn, True
            try:
                self._show(turn, turn.listener.builder.started() if turn.listener else [])
                await self._ready.wait()
                if self.health.status == "failed" or turn.cancel_pending:
                    if not turn.finished.is_set() and turn.listener is not None:
                        why = f"the model could not be loaded: {self.health.error}"
                        self._finish(turn, turn.listener.builder.failed("model_load", why))
                    return
                if turn.conversation is not None:
                    self.session.adopt(turn.conversation)
                elif (live := self.session.conversation) is None or live.id != turn.session:
                    store = self.session.store
                    assert store is not None  # _check_session found it there
                    self.session.adopt(store.load_conversation(turn.session))
                request = turn.request
                forced = [request.force_tool] if request.force_tool else None
                self.session.send(
                    request.prompt, forced, self._settings(request), request.tool_choice
                )
                await turn.finished.wait()
            finally:
                self._current, turn.running = None, False

    def _settings(self, request: TurnRequest) -> Any:
        settings = self.session.config.agent
        if request.temperature is not None:
            settings = replace(settings, temperature=request.temperature)
        if request.top_p is not None:
            settings = replace(settings, top_p=request.top_p)
        if request.max_output_tokens is not None:
            settings = replace(settings, max_tokens_per_completion=request.max_output_tokens)
        return settings

    def _answer(self, request: TurnRequest) -> Reply:
        previous = request.continues_response or ""
        turn = self._paused.get(previous)
        if turn is None:
            raise BadRequest(
                f"response {previous!r} is not waiting for an approval: it finished, or its"
                f" request was denied when no answer came within {self.approval_timeout:g} s",
                "previous_response_id",
                status=409,
            )
        approval = self._matching(request.approvals, turn)
        del self._paused[previous]
        if turn.timer is not None:
            turn.timer.cancel()
        turn.request = replace(turn.request, continues_response=previous)
        listener = self._listener(turn)
        first = listener.builder.created(queued=False)
        request_id, turn.waiting_on = turn.waiting_on, ""
        decision = PermissionDecision(
            approval.approve, "once", approval.reason or "answered over the API"
        )
        self.session.reply_permission(request_id, decision)
        return Reply(self, turn, listener, first)

    def _matching(self, approvals: list[Approval], turn: Turn) -> Approval:
        for approval in approvals:
            if approval.request_id != turn.waiting_on:
                raise BadRequest(
                    f"approval_request_id {approval.request_id!r} is not the request this"
                    f" response waits for ({turn.waiting_on})",
                    "input",
                )
        return approvals[-1]

    # --- events from the worker --------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        self._track_health(event)
        turn = self._current
        if turn is None:
            return
        listener = turn.listener
        if listener is not None:
            self._show(turn, listener.builder.on(event))
        if isinstance(event, IterationStart | Completed) and not turn.prompt_started:
            turn.prompt_started = True
            if turn.cancel_pending:
                self.session.cancel()
        if isinstance(event, PermissionRequest):
            self._pause(turn, event)
        elif isinstance(event, Completed):
            self._finish(turn, [])

    def _finish(self, turn: Turn, payloads: list[Payload]) -> None:
        self._show(turn, payloads)
        turn.finished.set()
        if turn.listener is not None:
            turn.listener.events.put_nowait(None)

    def _pause(self, turn: Turn, request: PermissionRequest) -> None:
        listener = turn.listener
        if listener is None:  # nobody can answer: its client left, or an earlier one timed out
            self.session.reply_permission(
                request.request_id,
                PermissionDecision(False, "timeout", "no client is waiting for this reply"),
            )
            return
        turn.listener, turn.waiting_on = None, request.request_id
        listener.events.put_nowait(None)
        self._paused[listener.builder.id] = turn
        assert self._loop is not None
        turn.timer = self._loop.call_later(
            self.approval_timeout, self._time_out, listener.builder.id
        )

    def _time_out(self, response_id: str) -> None:
        turn = self._paused.pop(response_id, None)
        if turn is None:
            return
        request_id, turn.waiting_on = turn.waiting_on, ""
        why = f"no answer came within {self.approval_timeout:g} s"
        self.session.reply_permission(request_id, PermissionDecision(False, "timeout", why))

    def _show(self, turn: Turn, payloads: list[Payload]) -> None:
        if turn.listener is not None:
            for payload in payloads:
                turn.listener.events.put_nowait(payload)

    def _track_health(self, event: Event) -> None:
        health = self.health
        if isinstance(event, ModelLoaded):
            health.status, health.progress, health.model = "ready", None, event.model
            self._ready.set()
        elif health.status != "loading":
            return
        elif isinstance(event, ModelLoadProgress | DownloadProgress):
            health.progress = event.fraction
        elif isinstance(event, Error):
            health.error = event.message
        elif isinstance(event, Completed):  # before the model loaded: it could not
            health.status = "failed"
            self._ready.set()
