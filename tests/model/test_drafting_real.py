"""Prompt-lookup drafting on the real demo GGUF: it guesses and is taken where a reply copies,
the text is plain decoding's (any difference is a near-tie that batched arithmetic rounds the
other way), and the KV cache holds exactly what llama-cpp-python thinks it holds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from tui_agent.bench.drafting_bench import SETTINGS_PY
from tui_agent.bench.engine_bench import cold
from tui_agent.config import ModelConfig
from tui_agent.engine import generation, resident
from tui_agent.engine.generation import GREEDY, Sampling, TurnStats, collect, stream_completion
from tui_agent.engine.resident import ResidentModel

pytestmark = pytest.mark.model

EDIT_PROMPT = (
    "<|im_start|>system\nYou are a helpful coding assistant.<|im_end|>\n<|im_start|>user\n"
    f"Here is settings.py:\n```python\n{SETTINGS_PY}```\n"
    "Return the whole file with read_settings renamed to load_settings.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture
def model(demo_gguf: Path) -> Iterator[ResidentModel]:
    config = ModelConfig(n_ctx=4096, n_threads=2, state_cache_mb=0, state_disk_mb=0)
    loaded = resident.get_resident_model(demo_gguf, config)
    yield loaded
    loaded.drafting = True


def run(
    model: ResidentModel,
    drafting: bool,
    sampling: Sampling,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str = EDIT_PROMPT,
) -> tuple[list[int], str, TurnStats]:
    """A cold run, with the token ids it produced."""
    produced: list[int] = []
    text_of = generation._Pieces.text

    def recording(self: generation._Pieces, token: int) -> str:
        produced.append(token)
        return text_of(self, token)

    monkeypatch.setattr(generation._Pieces, "text", recording)
    model.drafting = drafting
    cold(model)
    text, stats = collect(stream_completion(model, prompt, sampling))
    monkeypatch.setattr(generation._Pieces, "text", text_of)
    return produced, text, stats


def test_a_copying_reply_is_drafted_and_greedy_text_is_plain_decoding_s(
    model: ResidentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampling = replace(GREEDY, max_tokens=300)
    plain, _, plain_stats = run(model, False, sampling, monkeypatch)
    drafted, _, stats = run(model, True, sampling, monkeypatch)
    assert plain_stats.drafted_tokens == 0
    assert stats.drafted_tokens >= 50 and stats.accepted_tokens >= stats.drafted_tokens // 2
    if drafted == plain:
        return
    # Where they part, plain decoding's own logits rate both tokens almost equally: closer than
    # evaluating the last tokens in one batch instead of one by one moves two logits apart.
    at = next(i for i, (a, b) in enumerate(zip(plain, drafted, strict=False)) if a != b)
    assert at >= 4
    run(model, False, replace(GREEDY, max_tokens=at + 1), monkeypatch)
    single = last_logits(model)
    assert int(single.argmax()) == plain[at]
    run(model, False, replace(GREEDY, max_tokens=at - 2), monkeypatch)
    llama = model.llama
    llama._batch.set_batch(plain[at - 3 : at], n_past=llama.n_tokens, logits_all=True)
    llama._ctx.decode(llama._batch)
    rounding = float(np.abs(last_logits(model) - single).max())
    gap = float(single[plain[at]] - single[drafted[at]])
    assert 0 <= gap <= 2 * rounding, (
        f"token {at}: {gap:.3f} below the best; rounding {rounding:.3f}"
    )


def last_logits(model: ResidentModel) -> np.ndarray:
    llama = model.llama
    row = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(row, shape=(llama.n_vocab(),)).copy()


def test_the_kv_cache_holds_what_the_token_list_says_after_a_cut(
    model: ResidentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    llama = model.llama
    prompt = llama.tokenize(EDIT_PROMPT.encode(), add_bos=True, special=True)
    whole, _, _ = run(model, True, replace(GREEDY, max_tokens=300), monkeypatch)
    beyond = []
    for cut in (len(whole) * 2 // 3, len(whole) * 4 // 5, len(whole) - 7):  # inside batches, likely
        produced, _, stats = run(model, True, replace(GREEDY, max_tokens=cut), monkeypatch)
        assert stats.generated_tokens == cut
        assert_cache_matches(model)
        # Every produced token but the last was evaluated, after the prompt; beyond them only
        # guesses the model took can remain (a stop inside a batch leaves them).
        evaluated = list(llama.input_ids[: llama.n_tokens])
        assert evaluated[: len(prompt) + cut - 1] == prompt + produced[:-1]
        beyond.append(llama.n_tokens - (len(prompt) + cut - 1))
    assert any(beyond), "no stop landed inside a batch of guesses"
    # A next turn on that cache (no cold start) reuses it and keeps it consistent.
    text, stats = collect(stream_completion(model, EDIT_PROMPT, replace(GREEDY, max_tokens=60)))
    assert stats.cached_tokens == len(prompt) - 1 and text
    assert_cache_matches(model)


def assert_cache_matches(model: ResidentModel) -> None:
    """The KV cache ends where llama-cpp-python's token list does (a guess the model refused
    that stayed in the cache would be attended to by every later token)."""
    llama = model.llama
    memory = llama_cpp.llama_get_memory(llama.ctx)
    assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == llama.n_tokens - 1


def test_sampling_at_a_temperature_drafts_too(
    model: ResidentModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether a sampled reply copies the file depends on the seed and on the build's arithmetic
    # (one portable build's reply at 0.7, seed 7 drafted 3 tokens and took none): a low
    # temperature keeps it a copy, and one of three seeds taking guesses is enough.
    accepted = []
    for seed in (7, 8, 9):
        sampling = Sampling(temperature=0.3, seed=seed, max_tokens=200, repeat_penalty=1.0)
        produced, text, stats = run(model, True, sampling, monkeypatch)
        assert stats.generated_tokens == len(produced) > 0 and text
        assert stats.accepted_tokens <= stats.drafted_tokens
        accepted.append(stats.accepted_tokens)
    assert any(accepted), accepted


def test_drafting_is_off_when_configured(demo_gguf: Path) -> None:
    config = ModelConfig(n_ctx=2048, n_threads=2, draft="off", state_disk_mb=0)
    assert not resident.get_resident_model(demo_gguf, config).drafting
