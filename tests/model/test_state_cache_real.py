"""Saved states on the real demo model: going back to a conversation restores its state instead
of reading it again, and the greedy reply is the one a full re-read gives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.bench.engine_bench import cold, history_conversation
from tui_agent.config import ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.generation import GREEDY, collect, stream_completion

pytestmark = pytest.mark.model


def prompt_of(backend: LlamaBackend, conversation: Conversation, question: str) -> str:
    conversation.append(Message("user", question))
    return backend.render(conversation.for_template([], "tagged"), [])


@pytest.mark.parametrize("history_tokens", [1000, 3000])
def test_going_back_restores_the_state_and_the_reply_is_the_same(
    demo_gguf: Path, history_tokens: int
) -> None:
    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=4096, n_threads=2))
    assert model.state_cache is not None
    backend = LlamaBackend(model)
    sea = prompt_of(backend, history_conversation(history_tokens, backend), "And one more?")
    other = prompt_of(backend, Conversation(system_prompt="You are terse."), "Say hi.")
    sampling = replace(GREEDY, max_tokens=40)

    cold(model)
    model.state_cache.clear()  # the model is shared by the tests: start with nothing saved
    read_in_full, first = collect(stream_completion(model, sea, sampling))
    assert first.cached_tokens == 0 and first.restored_tokens == 0
    collect(stream_completion(model, other, sampling))  # another session takes the cache
    assert len(model.state_cache) >= 1
    restored, again = collect(stream_completion(model, sea, sampling))
    assert again.restored_tokens >= first.prompt_tokens - 1, "the state came back"
    assert again.cached_tokens >= first.prompt_tokens - 1 and again.restore_seconds < 2
    assert restored == read_in_full, "greedy text after a restore = after reading it all"


def test_the_agent_reports_the_restore(demo_gguf: Path) -> None:
    from tui_agent.agent.loop import run_agent_loop
    from tui_agent.config import AgentConfig
    from tui_agent.events import TurnStatistics
    from tui_agent.tools.base import NoTools

    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=4096, n_threads=2))
    backend = LlamaBackend(model)
    config = AgentConfig(temperature=0.0, max_tokens_per_completion=8, max_iterations=1)
    sea, other = history_conversation(800, backend), Conversation()

    def turn(conversation: Conversation, text: str) -> TurnStatistics:
        events: list[object] = []
        run_agent_loop(backend, conversation, text, NoTools(), config, events.append)
        return next(e for e in events if isinstance(e, TurnStatistics))

    turn(sea, "And one more?")
    turn(other, "Say hi.")
    back = turn(sea, "Back to the sea?")
    assert back.restored_tokens > 700 and back.restore_seconds > 0
