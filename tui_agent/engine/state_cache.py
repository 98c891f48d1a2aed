"""Saved model states, so a conversation that comes back is not read again from its start.

The resident model keeps one conversation's tokens in its KV cache. Its state (llama.cpp's
per-sequence state: only the cells in use, ~22 KiB a token on the demo model, 0.07 s for 1,800
tokens) is copied out when the worker goes idle after a turn, and before a prompt that shares
less of its start with it replaces it (another session, /new). A prompt that shares more with a
saved state than with the live cache gets that state put back (0.1 s) and only its own end
evaluated: going back to a session costs a restore, not a re-read of its whole history (seconds,
growing with its length).

States live in memory under a byte budget, least recently used first out, and on disk
(engine/state_files.py) for sessions resumed by a later process; every new session's prompt
starts with the same system prompt and tools, so any saved state gives it that start too.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from tui_agent.engine.state_files import StateFile, StateShelf

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


def _live_tokens(llama: Any) -> tuple[int, ...]:
    return tuple(int(t) for t in llama._input_ids[: llama.n_tokens])


class StateCache:
    def __init__(self, budget_bytes: int, shelf: StateShelf | None = None) -> None:
        self.budget = budget_bytes
        self.shelf = shelf
        # The session whose prompt the live KV cache holds (its saved states are named after it).
        self.live_session = ""
        self.last_copy_seconds = 0.0  # how long the last keep() held the worker (the bench)
        self._states: OrderedDict[tuple[int, ...], SavedState] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return sum(state.size for state in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def clear(self) -> None:
        """Forget the states in memory (those on disk stay for later processes)."""
        with self._lock:
            self._states.clear()

    def keep(self, llama: Any, live: tuple[int, ...] | None = None) -> bool:
        """Save the live cache's state (when it holds enough to be worth it and is not saved
        yet): in memory now, on disk in the background. True when it was saved. ``live``: the
        tokens the cache holds, when the caller has them already."""
        live = live if live is not None else _live_tokens(llama)
        if len(live) < MIN_TOKENS or live in self._states:
            return False
        if self.shelf is not None and any(e.tokens == live for e in self.shelf.entries()):
            return False
        import llama_cpp

        started = time.perf_counter()
        size = int(llama_cpp.llama_state_seq_get_size(llama.ctx, 0))
        if size <= 0:
            return False
        data = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(llama.ctx, data, size, 0))
        if written <= 0:
            return False
        self.last_copy_seconds = time.perf_counter() - started
        state = SavedState(live, data, written)
        prune = not recurrent(llama)  # states this one extends: it can be cut back to them
        with self._lock:
            if prune:
                for tokens in [t for t in self._states if live[: len(t)] == t]:
                    del self._states[tokens]
            self._states[live] = state
            while self.used_bytes > self.budget:
                self._states.popitem(last=False)
        if self.shelf is not None:
            self.shelf.save_later(live, data, written, self.live_session, prune)
        return True

    def keep_before_replacing(self, llama: Any, prompt: list[int]) -> None:
        """Save the live cache's state when the prompt is about to replace more than a little
        of it (what the prompt shares with it stays in place anyway)."""
        live = _live_tokens(llama)
        if len(live) - common_prefix(live, prompt) >= MIN_TOKENS:
            self.keep(llama, live)

    def restore_best(self, llama: Any, prompt: list[int]) -> Restored | None:
        """Put back the saved state that shares the longest start with the prompt, when it
        shares clearly more than the live cache does; None when none does."""
        live = common_prefix(llama._input_ids[: llama.n_tokens], prompt)
        while (best := self._best(llama, prompt, live)) is not None:
            started = time.perf_counter()
            saved = best.source
            if isinstance(saved, StateFile):  # on disk: read (and checked) first
                assert self.shelf is not None
                read = self.shelf.read(saved)
                if read is None:  # a bad file, now removed: try the next best
                    continue
                saved = SavedState(saved.tokens, *read)
            if not _put_back(llama, saved, best.shared):
                return None
            llama.input_ids[: best.shared] = prompt[: best.shared]
            llama.n_tokens = best.shared
            llama._requires_eval = True
            return Restored(best.shared, time.perf_counter() - started)
        return None

    def _best(self, llama: Any, prompt: list[int], live: int) -> _Candidate | None:
        """The candidate sharing most with the prompt, in memory before on disk, then the
        smallest (fewest bytes to put back)."""
        with self._lock:
            candidates = [
                _Candidate(common_prefix(s.tokens, prompt), True, s.size, s.tokens, s)
                for s in self._states.values()
            ]
        if self.shelf is not None:
            candidates += [
                _Candidate(common_prefix(e.tokens, prompt), False, e.file_size, e.tokens, e)
                for e in self.shelf.entries()
                if e.tokens not in self._states
            ]
        # A recurrent model's state cannot be cut back to a shorter start.
        whole_only = recurrent(llama)
        usable = [
            c
            for c in candidates
            if c.shared >= live + MIN_TOKENS and not (whole_only and c.shared < len(c.tokens))
        ]
        if not usable:
            return None
        best = max(usable, key=lambda c: (c.shared, c.in_memory, -c.size))
        if best.in_memory:
            with self._lock:
                if best.tokens in self._states:
                    self._states.move_to_end(best.tokens)
        return best


@dataclass(frozen=True)
class _Candidate:
    shared: int  # tokens it has in common with the prompt's start
    in_memory: bool
    size: int
    tokens: tuple[int, ...]
    source: SavedState | StateFile


def recurrent(llama: Any) -> bool:
    """A recurrent or hybrid model: its state cannot be cut back to fewer tokens."""
    return bool(getattr(llama, "_is_recurrent", False) or getattr(llama, "_is_hybrid", False))


def _put_back(llama: Any, saved: SavedState, shared: int) -> bool:
    """Replace the KV cache with a saved state cut to its first ``shared`` tokens."""
    import llama_cpp

    memory = llama_cpp.llama_get_memory(llama.ctx)
    llama_cpp.llama_memory_seq_rm(memory, -1, 0, -1)
    restored = llama_cpp.llama_state_seq_set_data(llama.ctx, saved.data, saved.size, 0)
    # Only the shared start is kept; llama-cpp-python must know what the cache holds.
    if not restored or not llama_cpp.llama_memory_seq_rm(memory, 0, shared, -1):
        llama.reset()  # nothing usable is left in the cache: the prompt is read in full
        llama_cpp.llama_memory_clear(memory, True)
        return False
    return True
