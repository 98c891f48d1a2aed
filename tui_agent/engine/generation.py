"""Stream one completion from the resident model, with the statistics of the turn.

Cancellation breaks out of llama-cpp-python's token generator: at most one more token is
produced and the KV cache stays consistent for the next turn.
"""

from __future__ import annotations

import codecs
import ctypes
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from tui_agent.engine.drafting import DraftPolicy, drafted_tokens
from tui_agent.engine.resident import ResidentModel
from tui_agent.engine.state_cache import Restored


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
    # Of the cached tokens, those a saved state put back (engine/state_cache.py), and how long.
    restored_tokens: int = 0
    restore_seconds: float = 0.0
    # Cores other programs kept busy at the most during the call (engine/threads.py; 0 unknown).
    busy_cores: float = 0.0
    # Tokens guessed by prompt lookup (engine/drafting.py), and of those, the ones the model took.
    drafted_tokens: int = 0
    accepted_tokens: int = 0

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
    with model.in_use() as llama:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=True, special=True))


def collect(stream: Generator[str, None, TurnStats]) -> tuple[str, TurnStats]:
    """All of a stream's text and its stats (for callers that do not show text as it comes)."""
    text = ""
    while True:
        try:
            text += next(stream)
        except StopIteration as done:
            return text, done.value if done.value is not None else TurnStats()


def stream_completion(
    model: ResidentModel,
    prompt: str,
    sampling: Sampling,
    should_stop: Callable[[], bool] = lambda: False,
    grammar: Any = None,
    keep_special: frozenset[str] = frozenset(),
    session: str = "",
) -> Generator[str, None, TurnStats]:
    """Yield text pieces as they are generated; the generator's return value is the TurnStats.

    Tokens are detokenized one at a time (llama-cpp-python's create_completion detokenizes the
    whole reply again for every token, and drops every special token). Special tokens whose text
    is in ``keep_special`` (tool-call and reasoning markup such as ``[TOOL_CALLS]``) are kept;
    other special tokens are dropped, and an end-of-generation token ends the reply. The model
    states saved from now on are named after ``session``.
    """
    # The time to the first token counts saving and restoring states too.
    started = time.perf_counter()
    with model.in_use() as llama:
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        restored = None
        if model.state_cache is not None:
            model.state_cache.keep_before_replacing(llama, tokens)
            restored = model.state_cache.restore_best(llama, tokens)
            model.state_cache.live_session = session
        if model.threads is not None:
            model.threads.start()
        return (
            yield from _stream(
                model,
                llama,
                tokens,
                restored,
                started,
                sampling,
                should_stop,
                grammar,
                keep_special,
            )
        )


def _stream(
    model: ResidentModel,
    llama: Any,
    tokens: list[int],
    restored: Restored | None,
    started: float,
    sampling: Sampling,
    should_stop: Callable[[], bool],
    grammar: Any,
    keep_special: frozenset[str],
) -> Generator[str, None, TurnStats]:
    cached = llama.longest_token_prefix(llama._input_ids[: llama.n_tokens], tokens)
    # llama.cpp must re-evaluate at least the last prompt token to get fresh logits.
    stats = TurnStats(prompt_tokens=len(tokens), cached_tokens=min(cached, len(tokens) - 1))
    if restored is not None:
        stats.restored_tokens, stats.restore_seconds = restored.tokens, restored.seconds
    llama.n_batch = max(1, min(sampling.n_batch, model.settings.n_batch))
    llama.set_seed(sampling.seed if sampling.seed >= 0 else random.randint(0, 2**32 - 1))
    pieces = _Pieces(llama, keep_special, model.end_token_ids)
    stops = _StopMatcher((*sampling.stop, *model.stop_strings))
    generated = llama.generate(
        tokens,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        temp=sampling.temperature,
        repeat_penalty=sampling.repeat_penalty,
        grammar=grammar,
    )
    policy = DraftPolicy() if model.drafting else None
    stream = _with_drafts(llama, generated, policy) if policy is not None else generated
    stats.finish_reason = "length"
    governor = model.threads
    try:
        for token in stream:
            if governor is not None:
                governor.tick()
            if stats.time_to_first_token == 0.0:
                stats.time_to_first_token = time.perf_counter() - started
            if pieces.ends_generation(token):
                stats.finish_reason = "stop"
                break
            stats.generated_tokens += 1
            shown, stopped = stops.feed(pieces.text(token))
            if shown:
                yield shown
            if stopped:
                stats.finish_reason = "stop"
                break
            if should_stop():
                stats.finish_reason = "cancelled"
                break
            if stats.generated_tokens >= sampling.max_tokens:
                break
        if stats.finish_reason != "cancelled" and (rest := stops.finish(pieces.flush())):
            yield rest
    except RuntimeError:
        # llama_decode fails when interrupted (a cancel or an unload mid-prompt); its cache
        # keeps only the batches that finished, which the next completion builds on.
        if not model.interrupted:
            raise
        stats.finish_reason = "cancelled"
    finally:
        stream.close()
        stats.generation_seconds = time.perf_counter() - started
        stats.busy_cores = governor.busiest if governor is not None else 0.0
        if policy is not None:
            stats.drafted_tokens, stats.accepted_tokens = policy.drafted, policy.accepted
        model.record_turn(stats.evaluated_tokens, stats.generated_tokens, stats.generation_seconds)
    return stats


def _with_drafts(
    llama: Any, generated: Generator[int, Any, None], policy: DraftPolicy
) -> Generator[int, None, None]:
    """The first token from llama-cpp-python's generate (which reads the prompt, reusing the
    KV cache), the rest from the drafting loop."""
    first = next(generated, None)
    generated.close()  # its sampler stays on llama for the loop
    if first is None:
        return
    yield first
    yield from drafted_tokens(llama, first, policy)


class _Pieces:
    """Token → text, one token at a time, with UTF-8 sequences split across tokens joined."""

    def __init__(
        self, llama: Any, keep_special: frozenset[str], ends: frozenset[int] = frozenset()
    ) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._vocab = llama._model.vocab
        self._keep = keep_special
        # Tokens that end the turn though the vocabulary may not flag them as end-of-generation.
        self._ends = ends
        self._buffer = ctypes.create_string_buffer(256)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def ends_generation(self, token: int) -> bool:
        return token in self._ends or bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _piece(self, token: int, special: bool) -> bytes:
        size = self._llama_cpp.llama_token_to_piece(
            self._vocab, token, self._buffer, len(self._buffer), 0, special
        )
        if size < 0:  # the buffer is too small: -size is what it needs
            self._buffer = ctypes.create_string_buffer(-size)
            size = self._llama_cpp.llama_token_to_piece(
                self._vocab, token, self._buffer, len(self._buffer), 0, special
            )
        return ctypes.string_at(self._buffer, size)  # not the rest of the buffer

    def text(self, token: int) -> str:
        piece = self._piece(token, special=False)
        if not piece:  # a control token: kept only when it is markup the agent reads
            special = self._piece(token, special=True)
            piece = special if special.decode("utf-8", errors="replace") in self._keep else b""
        return str(self._decoder.decode(piece))

    def flush(self) -> str:
        return str(self._decoder.decode(b"", final=True))


class _StopMatcher:
    """Holds back text that may be the start of a stop string; reports when one appears."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i != -1]
        if hits:
            shown, self._pending = self._pending[: min(hits)], ""
            return shown, True
        keep = max(
            (
                n
                for s in self._stops
                for n in range(min(len(s) - 1, len(self._pending)), 0, -1)
                if self._pending.endswith(s[:n])
            ),
            default=0,
        )
        cut = len(self._pending) - keep
        shown, self._pending = self._pending[:cut], self._pending[cut:]
        return shown, False

    def finish(self, text: str) -> str:
        """The last text and whatever was held back: the reply ended without a stop string."""
        shown, stopped = self.feed(text)
        rest, self._pending = ("" if stopped else self._pending), ""
        return shown + rest
