"""Saved model states, so a conversation that comes back is not read again from its start.

The resident model keeps one conversation's tokens in its KV cache. Before a prompt that shares
less of its start with them replaces them (another session, /new), their state is copied out
(llama.cpp's per-sequence state: only the cells in use, ~22 KiB a token on the demo model, 0.07 s
for 1,800 tokens). A prompt that shares more with a saved state than with the live cache gets
that state put back (0.1 s) and only its own end evaluated: going back to a session costs a
restore, not a re-read of its whole history (seconds, growing with its length).

In memory only, within one process, under a byte budget, least recently used first out.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# Only states worth keeping: shorter runs are evaluated again in a blink.
MIN_TOKENS = 64


@dataclass
class SavedState:
    tokens: tuple[int, ...]
    data: Any  # a ctypes byte array with llama.cpp's state of sequence 0
    size: int


@dataclass(frozen=True)
class Restored:
    tokens: int  # of the prompt's start, now in the KV cache
    seconds: float


def common_prefix(a: Any, b: Any) -> int:
    from llama_cpp import Llama

    return int(Llama.longest_token_prefix(a, b))


class StateCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._states: OrderedDict[tuple[int, ...], SavedState] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return sum(state.size for state in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()

    def keep_before_replacing(self, llama: Any, prompt: list[int]) -> None:
        """Save the live cache's state when the prompt is about to replace more than a little
        of it (what the prompt shares with it stays in place anyway)."""
        live = tuple(int(t) for t in llama._input_ids[: llama.n_tokens])
        if len(live) - common_prefix(live, prompt) < MIN_TOKENS or live in self._states:
            return
        import llama_cpp

        size = int(llama_cpp.llama_state_seq_get_size(llama.ctx, 0))
        if size <= 0 or size > self.budget:
            return
        data = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(llama.ctx, data, size, 0))
        if written <= 0:
            return
        with self._lock:
            self._states[live] = SavedState(live, data, written)
            while self.used_bytes > self.budget:
                self._states.popitem(last=False)

    def restore_best(self, llama: Any, prompt: list[int]) -> Restored | None:
        """Put back the saved state that shares the longest start with the prompt, when it
        shares clearly more than the live cache does; None when none does."""
        live = common_prefix(llama._input_ids[: llama.n_tokens], prompt)
        with self._lock:
            best = max(
                self._states.values(), key=lambda s: common_prefix(s.tokens, prompt), default=None
            )
            shared = common_prefix(best.tokens, prompt) if best is not None else 0
            if best is None or shared < live + MIN_TOKENS:
                return None
            # A recurrent model's state cannot be cut back to a shorter start.
            recurrent = getattr(llama, "_is_recurrent", False) or getattr(
                llama, "_is_hybrid", False
            )
            if recurrent and shared < len(best.tokens):
                return None
            self._states.move_to_end(best.tokens)
        import llama_cpp

        started = time.perf_counter()
        memory = llama_cpp.llama_get_memory(llama.ctx)
        llama_cpp.llama_memory_seq_rm(memory, -1, 0, -1)
        restored = llama_cpp.llama_state_seq_set_data(llama.ctx, best.data, best.size, 0)
        # Only the shared start is kept; llama-cpp-python must know what the cache holds.
        if not restored or not llama_cpp.llama_memory_seq_rm(memory, 0, shared, -1):
            llama.reset()  # nothing usable is left in the cache: the prompt is read in full
            llama_cpp.llama_memory_clear(memory, True)
            return None
        llama.input_ids[:shared] = prompt[:shared]
        llama.n_tokens = shared
        llama._requires_eval = True
        return Restored(shared, time.perf_counter() - started)
