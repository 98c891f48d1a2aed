"""The worker thread with a scripted model: commands in, events out, cancel and permissions."""

from __future__ import annotations

import queue
import threading
import time

from tests.scripted import ScriptedBackend
from tui_agent.agent.worker import (
    AgentWorker,
    Compact,
    NewSession,
    ResumeSession,
    SendPrompt,
    one_shot,
)
from tui_agent.errors import ModelNotFoundError
from tui_agent.events import (
    Completed,
    Error,
    Event,
    PermissionDecision,
    PermissionRequest,
    SessionChanged,
    TextDelta,
    ToolResult,
)
from tui_agent.tools.base import CallContext, ToolCall, ToolOutcome, ToolSpec


def next_of(worker: AgentWorker, kind: type, timeout: float = 10) -> Event:
    while True:
        event = worker.events.get(timeout=timeout)
        if isinstance(event, kind):
            return event


def collect_until_completed(worker: AgentWorker) -> list[Event]:
    events: list[Event] = []
    while not events or not isinstance(events[-1], Completed):
        events.append(worker.events.get(timeout=10))
    return events


def test_prompts_run_in_order_on_the_worker_thread() -> None:
    threads: list[str] = []
    backend = ScriptedBackend(["first", "second"])
    original = backend.stream

    def stream(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    backend.stream = stream  # type: ignore[method-assign]
    worker = AgentWorker(lambda sink: backend).start()
    worker.submit(SendPrompt("a"))
    worker.submit(SendPrompt("b"))
    first = collect_until_completed(worker)
    second = collect_until_completed(worker)
    assert first[-1] == Completed("done", "first") and second[-1] == Completed("done", "second")
    assert threads == ["llamachat-agent", "llamachat-agent"]
    worker.stop()


def test_load_failure_becomes_an_error_event() -> None:
    def fail(sink):  # type: ignore[no-untyped-def]
        raise ModelNotFoundError("model file not found: x.gguf", "check the path")

    worker = AgentWorker(fail).start()
    error = next_of(worker, Error)
    assert isinstance(error, Error) and "x.gguf" in error.message and error.hint == "check the path"
    assert next_of(worker, Completed) == Completed("error")


def test_cancel_stops_the_running_prompt() -> None:
    backend = ScriptedBackend(["a very long reply " * 20, "next"], pause_after=2)
    worker = AgentWorker(lambda sink: backend).start()
    worker.submit(SendPrompt("go"))
    next_of(worker, TextDelta)
    worker.cancel()
    backend.resume.set()
    done = next_of(worker, Completed)
    assert isinstance(done, Completed) and done.reason == "cancelled"
    assert worker.conversation.messages[-1].interrupted
    worker.submit(SendPrompt("again"))
    assert next_of(worker, Completed) == Completed("done", "next")
    worker.stop()


class AskingTools:
    """A dangerous tool that asks through the context, like the permission gate does."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                "delete",
                "Delete a file",
                {"type": "object", "properties": {"path": {"type": "string"}}},
            )
        ]

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        decision = context.ask(
            PermissionRequest(
                "r1", call.id, call.name, call.arguments, "deletes files", "delete(*)"
            )
        )
        if not decision.allowed:
            return ToolOutcome(False, f"denied by the user: {decision.reason}", denied=True)
        self.ran.append(call.arguments["path"])
        return ToolOutcome(True, "deleted")


CALL = '<tool_call>{"name": "delete", "arguments": {"path": "a.txt"}}</tool_call>'


def test_permission_prompt_blocks_until_answered() -> None:
    tools = AskingTools()
    worker = AgentWorker(lambda sink: ScriptedBackend([CALL, "ok"]), tools).start()
    worker.submit(SendPrompt("delete a.txt"))
    request = next_of(worker, PermissionRequest)
    assert isinstance(request, PermissionRequest)
    assert tools.ran == [], "nothing runs before the user answers"
    worker.reply_permission(request.request_id, PermissionDecision(True, "once"))
    result = next_of(worker, ToolResult)
    assert isinstance(result, ToolResult) and result.success and tools.ran == ["a.txt"]
    next_of(worker, Completed)
    worker.stop()


def test_denial_with_reason_reaches_the_model() -> None:
    tools = AskingTools()
    backend = ScriptedBackend([CALL, "understood"])
    worker = AgentWorker(lambda sink: backend, tools).start()
    worker.submit(SendPrompt("delete a.txt"))
    request = next_of(worker, PermissionRequest)
    worker.reply_permission(request.request_id, PermissionDecision(False, "once", "keep that file"))  # type: ignore[attr-defined]
    result = next_of(worker, ToolResult)
    assert isinstance(result, ToolResult) and result.denied and tools.ran == []
    next_of(worker, Completed)
    assert "keep that file" in backend.prompts[1]
    worker.stop()


def test_headless_worker_never_waits_for_an_answer() -> None:
    tools = AskingTools()
    worker = AgentWorker(lambda sink: ScriptedBackend([CALL, "ok"]), tools, ask_user=False).start()
    worker.submit(SendPrompt("delete"))
    result = next_of(worker, ToolResult)
    assert isinstance(result, ToolResult) and result.denied and "--allow" in result.output
    worker.stop()


def test_cancel_while_waiting_for_permission() -> None:
    tools = AskingTools()
    worker = AgentWorker(lambda sink: ScriptedBackend([CALL, "ok"]), tools).start()
    worker.submit(SendPrompt("delete"))
    next_of(worker, PermissionRequest)
    worker.cancel()
    done = next_of(worker, Completed)
    assert isinstance(done, Completed) and done.reason == "cancelled" and tools.ran == []
    worker.stop()


def test_new_and_resumed_sessions() -> None:
    backend = ScriptedBackend(["one", "two", "three"], summaries=["S"])
    worker = AgentWorker(lambda sink: backend).start()
    worker.submit(SendPrompt("first"))
    next_of(worker, Completed)
    old = worker.conversation
    worker.submit(NewSession())
    changed = next_of(worker, SessionChanged)
    assert (
        isinstance(changed, SessionChanged)
        and not changed.resumed
        and changed.conversation_id != old.id
    )
    worker.submit(SendPrompt("second"))
    next_of(worker, Completed)
    assert "first" not in backend.prompts[1]
    worker.submit(ResumeSession(old))
    resumed = next_of(worker, SessionChanged)
    assert (resumed.conversation_id, resumed.resumed) == (old.id, True)
    assert resumed.context_tokens > 0, "the status shows the resumed context's size"
    worker.submit(SendPrompt("third"))
    next_of(worker, Completed)
    assert "first" in backend.prompts[2] and "second" not in backend.prompts[2]
    worker.submit(Compact())
    worker.stop()


def test_cancel_drops_queued_prompts() -> None:
    backend = ScriptedBackend(["x" * 200, "never", "never"], pause_after=2)
    worker = AgentWorker(lambda sink: backend).start()
    worker.submit(SendPrompt("1"))
    worker.submit(SendPrompt("2"))
    worker.submit(SendPrompt("3"))
    next_of(worker, TextDelta)
    worker.cancel()
    backend.resume.set()
    next_of(worker, Completed)
    worker.submit(SendPrompt("4"))
    done = next_of(worker, Completed)
    assert isinstance(done, Completed) and done.text == "never"
    assert len(backend.prompts) == 2
    worker.stop()
    try:
        leftover = worker.events.get_nowait()
    except queue.Empty:
        leftover = None
    assert not isinstance(leftover, Completed)


def test_one_shot_is_isolated() -> None:
    backend = ScriptedBackend(["A title"])
    assert one_shot(backend, "Write a title.", "hello world") == "A title"
    assert "Write a title." in backend.prompts[0] and "hello world" in backend.prompts[0]


def test_a_cancel_just_before_the_permission_question_answers_it() -> None:
    """Esc pressed while the call is being prepared, before the question is asked: the question
    must not wait for an answer the user already gave."""
    entered, go = threading.Event(), threading.Event()

    class SlowToAsk(AskingTools):
        def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
            entered.set()
            go.wait(5)
            return super().execute(call, context)

    tools = SlowToAsk()
    events: list[object] = []
    worker = AgentWorker(
        lambda sink: ScriptedBackend([CALL, "ok"]), tools, sink=events.append
    ).start()
    worker.submit(SendPrompt("delete a.txt"))
    assert entered.wait(5)
    worker.cancel()
    go.set()
    deadline = time.monotonic() + 5
    while not any(isinstance(e, Completed) for e in events) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert [e.reason for e in events if isinstance(e, Completed)] == ["cancelled"]
    assert not any(isinstance(e, PermissionRequest) for e in events), "no question asked"
    assert tools.ran == []
