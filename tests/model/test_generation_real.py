"""The token loop on the real demo GGUF: special tokens, stop strings, limits, seeds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tui_agent.config import ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.generation import GREEDY, Sampling, TurnStats, _Pieces, stream_completion
from tui_agent.engine.resident import ResidentModel

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
    stream = stream_completion(model, prompt, sampling)
    text = ""
    while True:
        try:
            text += next(stream)
        except StopIteration as done:
            return text, done.value


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
