"""Model states on disk with the real demo model: a later process continues from them with the
same greedy reply, bad or foreign files fall back to reading the prompt, the CLI shows and frees
them."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import headless_config, run_cli
from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Message
from tui_agent.bench.engine_bench import history_conversation
from tui_agent.config import ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.generation import GREEDY, TurnStats, collect, stream_completion
from tui_agent.engine.resident import ResidentModel
from tui_agent.engine.state_files import StateShelf, state_files

pytestmark = pytest.mark.model

SAMPLING = replace(GREEDY, max_tokens=30)


def like_a_new_process(model: ResidentModel) -> None:
    """What a process that just loaded the model has: an empty KV cache, nothing in memory."""
    import llama_cpp

    assert model.state_cache is not None
    model.state_cache.clear()
    llama = model.llama
    llama.reset()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llama.ctx), True)


def sea_prompt(model: ResidentModel, history_tokens: int) -> str:
    backend = LlamaBackend(model)
    conversation = history_conversation(history_tokens, backend)
    conversation.append(Message("user", "And one more?"))
    return backend.render(conversation.for_template([], "tagged"), [])


def answer(model: ResidentModel, prompt: str) -> tuple[str, TurnStats]:
    return collect(stream_completion(model, prompt, SAMPLING, session="sea"))


def saved(model: ResidentModel) -> StateShelf:
    """Save the live state to disk now, as the worker does when it goes idle after a turn."""
    assert model.state_cache is not None and model.state_cache.shelf is not None
    with model.in_use() as llama:
        model.state_cache.keep(llama)
    model.state_cache.shelf.flush()
    return model.state_cache.shelf


@pytest.mark.parametrize(("history_tokens", "n_ctx"), [(1000, 4096), (4000, 8192)])
def test_a_later_process_continues_from_the_saved_state(
    demo_gguf: Path, history_tokens: int, n_ctx: int
) -> None:
    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=n_ctx, n_threads=2))
    prompt = sea_prompt(model, history_tokens)
    like_a_new_process(model)
    read_in_full, first = answer(model, prompt)
    assert first.restored_tokens == 0 and first.prompt_tokens > history_tokens
    shelf = saved(model)
    (entry,) = shelf.entries()
    assert entry.session == "sea" and len(entry.tokens) > first.prompt_tokens

    like_a_new_process(model)
    restored, again = answer(model, prompt)
    assert again.restored_tokens >= first.prompt_tokens - 1, "continued from the file"
    assert restored == read_in_full, "greedy text after a restore = after reading it all"


def test_a_corrupt_file_is_removed_and_the_prompt_read_again(demo_gguf: Path) -> None:
    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=4096, n_threads=2))
    prompt = sea_prompt(model, 1000)
    like_a_new_process(model)
    reference, _ = answer(model, prompt)
    (entry,) = saved(model).entries()
    raw = bytearray(entry.path.read_bytes())
    raw[len(raw) // 2] ^= 0x55  # in the middle of the KV data
    entry.path.write_bytes(bytes(raw))

    like_a_new_process(model)
    text, stats = answer(model, prompt)
    assert stats.restored_tokens == 0 and stats.cached_tokens == 0
    assert text == reference and not entry.path.exists()


def test_states_of_another_context_size_or_model_are_not_used(
    demo_gguf: Path, tmp_path: Path
) -> None:
    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=4096, n_threads=2))
    prompt = sea_prompt(model, 1000)
    like_a_new_process(model)
    reference, _ = answer(model, prompt)
    (entry,) = saved(model).entries()

    smaller = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))
    text, stats = answer(smaller, prompt)
    assert stats.restored_tokens == 0 and text == reference

    # The same weights under another name are another model: a state file put in its folder
    # is refused by its header (and removed), and the prompt is read.
    copy = tmp_path / "other.gguf"
    shutil.copyfile(demo_gguf, copy)
    other = resident.get_resident_model(copy, ModelConfig(n_ctx=4096, n_threads=2))
    assert other.state_cache is not None and other.state_cache.shelf is not None
    folder = other.state_cache.shelf.directory
    folder.mkdir(parents=True, exist_ok=True)
    planted = folder / entry.path.name
    shutil.copyfile(entry.path, planted)
    text, stats = answer(other, prompt)
    assert stats.restored_tokens == 0 and text == reference and not planted.exists()
    assert entry.path.exists(), "the demo model's own state stays"


def test_memory_budget_zero_still_saves_to_disk_and_both_zero_turn_it_off(
    demo_gguf: Path,
) -> None:
    off = resident.get_resident_model(
        demo_gguf, ModelConfig(n_ctx=2048, n_threads=2, state_cache_mb=0, state_disk_mb=0)
    )
    assert off.state_cache is None
    disk_only = resident.get_resident_model(
        demo_gguf, ModelConfig(n_ctx=2048, n_threads=2, state_cache_mb=0)
    )
    prompt = sea_prompt(disk_only, 800)
    like_a_new_process(disk_only)
    answer(disk_only, prompt)
    shelf = saved(disk_only)
    assert disk_only.state_cache is not None and len(disk_only.state_cache) == 0
    assert len(shelf.entries()) == 1
    like_a_new_process(disk_only)
    assert answer(disk_only, prompt)[1].restored_tokens > 800


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return headless_config(tmp_path, max_tokens=20)


def turn_statistics(stdout: str) -> dict[str, object]:
    records = [json.loads(line) for line in stdout.splitlines()]
    return next(r for r in records if r["type"] == "turn_statistics")


def test_headless_runs_share_the_saved_start_and_resume_continues(config: Path) -> None:
    def run(*args: str) -> dict[str, object]:
        result = run_cli("--config", str(config), *args, "--output-format", "stream-json")
        assert result.returncode == 0, result.stderr
        return turn_statistics(result.stdout)

    first = run("-p", "Name a colour.")
    assert first["restored_tokens"] == 0
    # Another prompt in a new process: the system prompt and the tools come from the state
    # the first run saved when it quit.
    second = run("-p", "Name a fruit.")
    assert int(second["restored_tokens"]) >= 100  # type: ignore[call-overload]
    # Resuming the second session continues from all of it, the reply included.
    third = run("-c", "-p", "And another one?")
    assert int(third["restored_tokens"]) > int(second["prompt_tokens"])  # type: ignore[call-overload]

    info = run_cli("--config", str(config), "cache", "info", "--json")
    assert info.returncode == 0, info.stderr
    listing = json.loads(info.stdout)
    assert listing["states"] and listing["bytes"] == sum(s["bytes"] for s in listing["states"])
    sessions = {s["session"] for s in listing["states"]}
    shown = run_cli("--config", str(config), "history", "show", sessions.pop())
    assert "saved model state:" in shown.stderr and "tokens" in shown.stderr

    cleared = run_cli("--config", str(config), "cache", "clear")
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert list(state_files()) == []
    text = run_cli("--config", str(config), "cache", "info")
    assert "0 state(s)" in text.stdout


def test_the_worker_saves_when_idle_under_the_session_that_ran(demo_gguf: Path) -> None:
    import time

    from tui_agent.agent.worker import (
        IDLE_BEFORE_SAVING,
        AgentWorker,
        NewSession,
        ResumeSession,
        SendPrompt,
    )
    from tui_agent.config import AgentConfig
    from tui_agent.events import Completed
    from tui_agent.tools.base import NoTools

    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=4096, n_threads=2))
    like_a_new_process(model)
    backend = LlamaBackend(model)
    config = AgentConfig(temperature=0.0, max_tokens_per_completion=8, max_iterations=1)
    worker = AgentWorker(lambda sink: backend, NoTools(), config).start()
    sea = history_conversation(300, backend)
    try:
        worker.submit(ResumeSession(sea))
        worker.submit(SendPrompt("And one more?"))
        worker.submit(NewSession())  # at once: the state still goes under the sea session
        while not isinstance(worker.events.get(timeout=120), Completed):
            pass
        assert model.state_cache is not None and model.state_cache.shelf is not None
        shelf = model.state_cache.shelf
        deadline = time.monotonic() + 30
        while not shelf.entries() and time.monotonic() < deadline:
            time.sleep(IDLE_BEFORE_SAVING / 3)
        shelf.flush()
        (entry,) = shelf.entries()
        assert entry.session == sea.id and len(entry.tokens) > 300
    finally:
        worker.stop()
