"""Stream one completion from the resident model, with the statistics of the turn.

Cancellation breaks out of llama-cpp-python's token generator: at most one more token is
produced and the KV cache stays consistent for the next turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from tui_agent.engine.resident import ResidentModel


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.2
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int = -1
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    # Prompt tokens evaluated per batch; at most the n_batch the context was created with.
    n_batch: int = 512


GREEDY = Sampling(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=0)


@dataclass
class TurnStats:
    """The trace of one model call."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    time_to_first_token: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: str = "stop"

    @property
    def evaluated_tokens(self) -> int:
        """Prompt tokens the model had to process (not reused from the KV cache)."""
        return self.prompt_tokens - self.cached_tokens

    @property
    def tokens_per_second(self) -> float:
        # Decode rate after the first token, so prompt processing does not dilute it.
        decode_time = self.generation_seconds - self.time_to_first_token
        if self.generated_tokens <= 1 or decode_time <= 0:
            return 0.0
        return (self.generated_tokens - 1) / decode_time


def count_tokens(model: ResidentModel, text: str) -> int:
    return len(model.llama.tokenize(text.encode("utf-8"), add_bos=True, special=True))


def stream_completion(
    model: ResidentModel,
    prompt: str,
    sampling: Sampling,
    should_stop: Callable[[], bool] = lambda: False,
    grammar: Any = None,
) -> Generator[str, None, TurnStats]:
    """Yield text pieces as they are generated; the generator's return value is the TurnStats."""
    llama = model.llama
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    cached = llama.longest_token_prefix(llama._input_ids[: llama.n_tokens], tokens)
    # llama.cpp must re-evaluate at least the last prompt token to get fresh logits.
    stats = TurnStats(prompt_tokens=len(tokens), cached_tokens=min(cached, len(tokens) - 1))
    llama.n_batch = max(1, min(sampling.n_batch, model.settings.n_batch))
    started = time.perf_counter()
    stream = llama.create_completion(
        tokens,
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        repeat_penalty=sampling.repeat_penalty,
        seed=None if sampling.seed < 0 else sampling.seed,
        stop=list(sampling.stop) or None,
        grammar=grammar,
        stream=True,
    )
    try:
        for chunk in stream:
            choice = chunk["choices"][0]
            if stats.time_to_first_token == 0.0:
                stats.time_to_first_token = time.perf_counter() - started
            if choice.get("finish_reason"):
                # The closing chunk carries the reason, not a token.
                stats.finish_reason = str(choice["finish_reason"])
            else:
                stats.generated_tokens += 1
            if choice["text"]:
                yield choice["text"]
            if should_stop():
                stats.finish_reason = "cancelled"
                break
    finally:
        stream.close()
        stats.generation_seconds = time.perf_counter() - started
        model.record_turn(stats.evaluated_tokens, stats.generated_tokens, stats.generation_seconds)
    return stats
