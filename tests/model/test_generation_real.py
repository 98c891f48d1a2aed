"""The token loop on the real demo GGUF: special tokens, stop strings, limits, seeds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tui_agent.config import ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.fallback_templates import CHATML, fallback_template
from tui_agent.engine.generation import (
    GREEDY,
    Sampling,
    TurnStats,
    _Pieces,
    collect,
    stream_completion,
)
from tui_agent.engine.resident import ResidentModel, single_token

pytestmark = pytest.mark.model
PROMPT = (
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n"
    "Write three sentences about the sea, with the word 'über' and an emoji.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture
def model(demo_gguf: Path) -> ResidentModel:
    return resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))


def generate(
    model: ResidentModel, sampling: Sampling, prompt: str = PROMPT
) -> tuple[str, TurnStats]:
    return collect(stream_completion(model, prompt, sampling))


def test_the_text_is_what_llama_cpp_python_gives(model: ResidentModel) -> None:
    model.llama.reset()
    reference = model.llama.create_completion(
        PROMPT, max_tokens=60, temperature=0, top_k=1, top_p=1, min_p=0, repeat_penalty=1
    )["choices"][0]["text"]
    model.llama.reset()
    text, stats = generate(model, replace(GREEDY, max_tokens=60))
    assert text == reference and stats.generated_tokens <= 60


def test_limits_and_stop_strings(model: ResidentModel) -> None:
    _, stats = generate(model, replace(GREEDY, max_tokens=7))
    assert stats.generated_tokens == 7 and stats.finish_reason == "length"
    full, _ = generate(model, replace(GREEDY, max_tokens=60))
    word = full.split()[3]
    cut, stats = generate(model, replace(GREEDY, max_tokens=60, stop=(word,)))
    assert stats.finish_reason == "stop" and word not in cut and full.startswith(cut)


def test_special_tokens_are_kept_only_when_asked(model: ResidentModel) -> None:
    llama = model.llama
    start = llama.tokenize(b"<|im_start|>", add_bos=False, special=True)
    assert len(start) == 1
    assert _Pieces(llama, frozenset()).text(start[0]) == ""
    assert _Pieces(llama, frozenset({"<|im_start|>"})).text(start[0]) == "<|im_start|>"
    pieces = _Pieces(llama, frozenset())
    assert pieces.ends_generation(llama.token_eos()) and not pieces.ends_generation(start[0])
    assert pieces.text(llama.tokenize(b"sea", add_bos=False)[0]) == "sea"


def test_a_multibyte_character_split_across_tokens_is_joined(model: ResidentModel) -> None:
    llama = model.llama
    pieces = _Pieces(llama, frozenset())
    tokens = llama.tokenize("🌊über".encode(), add_bos=False)
    assert "".join(pieces.text(t) for t in tokens) + pieces.flush() == "🌊über"


def test_a_turn_ends_at_the_templates_end_token(model: ResidentModel) -> None:
    """For a template of our own, its end token stops generation even if the vocabulary does
    not flag it end-of-generation (a newline here, which a story soon writes)."""
    assert fallback_template(
        model.info.architecture, lambda t: single_token(model.llama, t) is not None
    ) == (CHATML), "the demo vocabulary has ChatML's tokens"
    newline = single_token(model.llama, "\n")
    assert newline is not None
    model.end_token_ids = frozenset({newline})
    try:
        text, stats = generate(model, replace(GREEDY, max_tokens=200))
    finally:
        model.end_token_ids = frozenset()
    assert stats.finish_reason == "stop" and "\n" not in text and stats.generated_tokens < 200
    _, plain = generate(model, replace(GREEDY, max_tokens=200))
    assert plain.generated_tokens > stats.generated_tokens


def test_a_bos_that_opens_the_first_turn_is_kept(model: ResidentModel) -> None:
    """SmolLM2's BOS is <|im_start|> and its tokenizer adds none: the first turn keeps it
    (it used to be stripped, so the prompt began with 'system' and no turn marker)."""
    from tui_agent.engine.chat_template import renderer_for

    prompt = renderer_for(model).render([{"role": "system", "content": "S"}])
    tokens = model.llama.tokenize(prompt.encode(), add_bos=True, special=True)
    assert prompt.startswith("<|im_start|>system") and tokens[0] == model.llama.token_bos()
    assert tokens[1] != model.llama.token_bos(), "not doubled"
