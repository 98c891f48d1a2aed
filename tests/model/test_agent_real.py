"""The agent loop and worker on the real demo GGUF (SmolLM2-135M-Instruct)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.scripted import FunctionTools
from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.loop import LoopControl, run_agent_loop
from tui_agent.agent.worker import SendPrompt
from tui_agent.config import AgentConfig, Config, ModelConfig
from tui_agent.engine import resident
from tui_agent.events import (
    Completed,
    ContextCompacted,
    Error,
    Event,
    TextDelta,
    ToolResult,
    TurnStatistics,
)
from tui_agent.session import llama_backend_loader

pytestmark = pytest.mark.model
GREEDY = AgentConfig(
    temperature=0.0, top_k=1, seed=7, max_tokens_per_completion=48, repeat_penalty=1.1
)


@pytest.fixture
def backend(demo_gguf: Path) -> LlamaBackend:
    return LlamaBackend(
        resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))
    )


def ask(
    backend: LlamaBackend,
    conversation: Conversation,
    text: str,
    config: AgentConfig = GREEDY,
    **kwargs,
) -> list[Event]:  # type: ignore[no-untyped-def]
    events: list[Event] = []
    run_agent_loop(backend, conversation, text, FunctionTools(), config, events.append, **kwargs)
    return events


def test_streamed_deltas_concatenate_to_the_final_text(backend: LlamaBackend) -> None:
    events = ask(backend, Conversation(), "Describe the sea in two sentences.")
    done = events[-1]
    assert isinstance(done, Completed) and done.reason in ("done", "length")
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.strip() == done.text and len(done.text) > 10
    assert sum(isinstance(e, TextDelta) for e in events) > 5


def test_follow_up_turn_evaluates_only_the_new_tokens(backend: LlamaBackend) -> None:
    conversation = Conversation()
    first = ask(backend, conversation, "Tell me about the moon. " * 10)
    second = ask(backend, conversation, "And the sun?")
    s1 = next(e for e in first if isinstance(e, TurnStatistics))
    s2 = next(e for e in second if isinstance(e, TurnStatistics))
    assert s2.prompt_tokens > s1.prompt_tokens + s1.generated_tokens - 5
    assert s2.cached_tokens >= s1.prompt_tokens, "the previous prompt must come from the KV cache"
    assert s2.evaluated_tokens < 30, f"only the new turn should be evaluated, got {s2}"


def test_cancel_then_the_next_prompt_works_and_reuses_the_cache(backend: LlamaBackend) -> None:
    conversation = Conversation()
    control = LoopControl()
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if sum(isinstance(e, TextDelta) for e in events) == 3:
            control.cancel.set()

    run_agent_loop(
        backend,
        conversation,
        "Write a long story about a dragon.",
        FunctionTools(),
        replace(GREEDY, max_tokens_per_completion=200),
        sink,
        control,
    )
    assert events[-1] == Completed("cancelled", conversation.messages[-1].content)
    deltas = sum(isinstance(e, TextDelta) for e in events)
    assert deltas <= 4, "cancel must stop generation within a token"
    assert conversation.messages[-1].interrupted
    after = ask(backend, conversation, "Now say hi.")
    stats = next(e for e in after if isinstance(e, TurnStatistics))
    assert isinstance(after[-1], Completed) and after[-1].reason in ("done", "length")
    assert stats.cached_tokens > 20


def test_compaction_keeps_a_small_context_going(demo_gguf: Path) -> None:
    small = LlamaBackend(
        resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=512, n_threads=2))
    )
    conversation = Conversation()
    config = replace(GREEDY, max_tokens_per_completion=60, compaction_keep_recent=2)
    compactions = []
    for i in range(12):
        events = ask(
            small, conversation, f"Question {i}: name a fruit and describe its colour.", config
        )
        compactions += [e for e in events if isinstance(e, ContextCompacted)]
        # Whatever the model wrote (greedy output differs between builds and CPUs), no turn
        # ends for want of room.
        assert isinstance(events[-1], Completed) and events[-1].reason != "error", events[-1]
        assert not [e for e in events if isinstance(e, Error)]
    assert compactions, "a 512-token context must have been compacted"
    assert all(c.prompt_tokens < 512 for c in compactions)
    assert conversation.summaries and conversation.summaries[0], "a summary, or the digest"


def test_grammar_forced_tool_call_reaches_the_tool(backend: LlamaBackend) -> None:
    ran: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(city)
        return f"sunny in {city}"

    tools = FunctionTools().add("get_weather", get_weather, {"city": {"type": "string"}}, ["city"])
    events: list[Event] = []
    run_agent_loop(
        backend,
        Conversation(),
        "What is the weather in Paris?",
        tools,
        replace(GREEDY, max_iterations=2),
        events.append,
        force_tools=tools.specs(),
    )
    assert len(ran) == 1 and ran[0]
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.success and result.output.startswith("sunny in")


def test_new_sessions_never_reload_the_model(demo_gguf: Path) -> None:
    config = Config()
    config.model = ModelConfig(n_ctx=2048, n_threads=2)
    config.agent = GREEDY
    resident.get_resident_model(demo_gguf, config.model)
    loads = resident.load_count()
    from tui_agent.agent.worker import AgentWorker, NewSession

    worker = AgentWorker(llama_backend_loader(config, str(demo_gguf)), None, config.agent).start()

    for i in range(5):
        worker.submit(NewSession())
        worker.submit(SendPrompt(f"Say the number {i}."))
        while not isinstance(event := worker.events.get(timeout=60), Completed):
            pass
        assert event.reason in ("done", "length")
    worker.stop()
    assert resident.load_count() == loads
    model = resident.get_resident_model(demo_gguf, config.model)
    assert model.stats().active_sessions >= 5


def test_headless_cli_streams_and_exits_zero() -> None:
    result = run_cli("-p", "Say hello.", "--max-iterations", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and result.stderr == ""
    piped = run_cli("-p", "-", stdin="What is the capital of France?")
    assert piped.returncode == 0 and piped.stdout.strip()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-p", "  "], 2, "the prompt is empty"),
        (["-p", "hi", "--max-iterations", "-1"], 2, "--max-iterations must be 0"),
        (["-p", "hi", "--model", "/nope/model.gguf"], 3, "model file not found"),
        (["-p", "hi", "--model", "huge"], 3, "unknown model preset"),
    ],
)
def test_headless_bad_input(args: list[str], code: int, message: str) -> None:
    result = run_cli(*args)
    assert (
        result.returncode == code and message in result.stderr and "Traceback" not in result.stderr
    )
