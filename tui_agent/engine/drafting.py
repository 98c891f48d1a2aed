"""Prompt-lookup drafting: guess the next tokens from the text so far, check them in one batch.

A coding agent's reply often copies what it just read (a file from a tool, the user's code).
When the last few tokens also appear earlier in the context, the tokens that followed them there
are a likely continuation: they are evaluated together with the token just sampled, each
position is sampled as usual, and the guesses are kept up to the first one the model would not
have chosen. Sampling each position and comparing keeps the output distribution exactly that of
plain decoding at any temperature (a guess is kept with the probability the model gives it), and
greedy text the same up to the rounding of batched arithmetic.

Why our own loop and not llama-cpp-python's ``draft_model``: its loop samples positions it has
no logits for unless the model was created with ``logits_all``, which keeps n_ctx × vocabulary
scores (GiBs) and computes logits for every prompt token (time to the first token +35-45% here).
This loop asks llama.cpp for logits only at the guessed positions.

On a CPU a batch of n tokens costs nearly n single tokens for small models (measured here: 4
tokens 2.4-2.9×, 16 tokens 8.5-10×), so a wrong guess is expensive and the gain has a ceiling
(16 tokens for the price of 8.5-10): guesses are made only from a long match, grow while they
are taken whole, and stop for a while after one is refused outright.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

# Measured here (a 1.5B coder model and the demo model, greedy): guesses from a 3-token match
# were taken 40% of the time, from a 12-token one 92%; at 3-4 tokens a story turn ran 15% slower.
MIN_MATCH = 8
LONGEST_MATCH = 16  # how far back a match is compared to choose between earlier occurrences
FIRST_DRAFT = 3  # a batch of 4 tokens, growing to 16 while guesses are taken whole
MAX_DRAFT = 15
MAX_PAUSE = 32  # tokens without guessing after refusals in a row, at the most


def continuation(tokens: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` tokens that followed the end of ``tokens`` where it appeared before: at
    the occurrence sharing the longest end with it (up to LONGEST_MATCH tokens; the latest of
    equals), if that is at least MIN_MATCH tokens long."""
    length = len(tokens)
    if count <= 0 or length <= MIN_MATCH:
        return []
    tail = tokens[length - MIN_MATCH :]
    # Starts of earlier occurrences of the tail that have at least one token after them.
    starts = np.flatnonzero(tokens[: length - MIN_MATCH] == tail[0])
    for offset in range(1, MIN_MATCH):
        if not len(starts):
            return []
        starts = starts[tokens[starts + offset] == tail[offset]]
    if not len(starts):
        return []
    # Extend each match backwards; the longest wins, then the latest.
    matched = np.full(len(starts), MIN_MATCH)
    alive = np.ones(len(starts), dtype=bool)
    for back in range(1, LONGEST_MATCH - MIN_MATCH + 1):
        here = starts - back
        mine = length - MIN_MATCH - back
        if mine < 0:
            break
        alive &= here >= 0
        alive[alive] = tokens[here[alive]] == tokens[mine]
        if not alive.any():
            break
        matched[alive] += 1
    best = int(np.flatnonzero(matched == matched.max())[-1])
    after = int(starts[best]) + MIN_MATCH
    return [int(t) for t in tokens[after : after + count]]


@dataclass
class DraftPolicy:
    """How many tokens to guess next, from how the last guesses went."""

    length: int = FIRST_DRAFT
    pause: int = 0  # tokens left before guessing again
    refusals: int = 0  # guesses refused outright in a row
    drafted: int = 0
    accepted: int = 0

    def size(self) -> int:
        if self.pause:
            self.pause -= 1
            return 0
        return self.length

    def taken(self, drafted: int, accepted: int) -> None:
        self.drafted += drafted
        self.accepted += accepted
        if accepted == drafted:  # copying: guess further
            self.length = min(self.length * 2, MAX_DRAFT)
            self.refusals = 0
        elif accepted:  # the copy ended or changed here
            self.length = max(FIRST_DRAFT, accepted)
            self.refusals = 0
        else:
            self.length = FIRST_DRAFT
            self.refusals += 1
            self.pause = min(2**self.refusals, MAX_PAUSE)


def drafted_tokens(llama: Any, first: int, policy: DraftPolicy) -> Generator[int, None, None]:
    """The tokens after ``first``, which llama-cpp-python's ``generate`` sampled (its prompt
    handling is kept) and which is not evaluated yet. Samples with the sampler ``generate``
    set up (``llama._sampler``: grammar, penalties, seed), so every token is sampled once, in
    order, as in plain decoding."""
    sampler = llama._sampler
    if sampler is None:
        raise RuntimeError("drafting needs the sampler of a generation in progress")
    n_ctx = llama.n_ctx()
    token = first
    while True:
        n_past = llama.n_tokens
        room = n_ctx - n_past - 1
        if room < 0:
            return
        count = min(policy.size(), room)
        drafts = []
        if count:
            history = np.append(llama.input_ids[:n_past], token)
            drafts = continuation(history, count)
        batch = [token, *drafts]
        # Logits at every position of a batch with guesses, else at its only token.
        llama._batch.set_batch(batch, n_past=n_past, logits_all=bool(drafts))
        llama._ctx.decode(llama._batch)
        llama.input_ids[n_past : n_past + len(batch)] = batch
        llama.n_tokens = n_past + len(batch)
        for index in range(len(batch)):
            sampled = int(sampler.sample(llama._ctx, index))
            if index < len(drafts) and sampled == drafts[index]:
                yield sampled
                continue
            if drafts:
                policy.taken(len(drafts), index)
            kept = n_past + index + 1  # the token and the guesses taken
            if kept < llama.n_tokens:
                llama._ctx.kv_cache_seq_rm(-1, kept, -1)
                llama.n_tokens = kept
            token = sampled
            yield token
            break
