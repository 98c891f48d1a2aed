"""Prompt-lookup drafting: where guesses come from, and how many are made."""

from __future__ import annotations

import numpy as np

from tui_agent.engine.drafting import (
    FIRST_DRAFT,
    MAX_DRAFT,
    MAX_PAUSE,
    MIN_MATCH,
    DraftPolicy,
    continuation,
)


def tokens(*parts: list[int]) -> np.ndarray:
    return np.array([t for part in parts for t in part], dtype=np.intc)


RUN = list(range(100, 100 + MIN_MATCH))  # a span long enough to be guessed from


def test_the_tokens_after_an_earlier_occurrence_of_the_end_are_the_guess() -> None:
    history = tokens([1, 2], RUN, [7, 8, 9, 10], [3], RUN)
    assert continuation(history, 3) == [7, 8, 9]
    assert continuation(history, 10) == [7, 8, 9, 10, 3, *RUN][:10]


def test_no_guess_from_a_match_shorter_than_min_match() -> None:
    short = RUN[1:]
    history = tokens([1], short, [7, 8], [2], short)
    assert continuation(history, 4) == []
    assert continuation(tokens(RUN), 4) == []  # only itself: nothing earlier
    assert continuation(tokens(RUN, [5], RUN), 0) == []


def test_the_occurrence_sharing_the_longest_end_wins_then_the_latest() -> None:
    # Two earlier copies of RUN: one preceded by the same token as the end (41), one not.
    history = tokens([41], RUN, [1, 1], [42], RUN, [2, 2], [41], RUN)
    assert continuation(history, 2) == [1, 1]
    # Equally long matches: the latest.
    history = tokens([9], RUN, [1, 1], [9], RUN, [2, 2], [8], RUN)
    assert continuation(history, 2) == [2, 2]


def test_a_guess_stops_at_the_end_of_what_is_known() -> None:
    history = tokens(RUN, [5], RUN)  # the occurrence is followed by 5, then RUN again
    assert continuation(history, 50) == [5, *RUN]


def test_guesses_taken_whole_grow_up_to_the_most() -> None:
    policy = DraftPolicy()
    sizes = []
    for _ in range(6):
        size = policy.size()
        sizes.append(size)
        policy.taken(size, size)
    assert sizes[0] == FIRST_DRAFT and sizes[1] == 2 * FIRST_DRAFT
    assert sizes[-1] == MAX_DRAFT and max(sizes) == MAX_DRAFT
    assert (policy.drafted, policy.accepted) == (sum(sizes), sum(sizes))


def test_refused_guesses_pause_guessing_longer_each_time() -> None:
    policy = DraftPolicy(length=MAX_DRAFT)
    pauses = []
    for _ in range(8):
        policy.taken(policy.size(), 0)
        assert policy.length == FIRST_DRAFT
        pause = 0
        while policy.size() == 0:
            pause += 1
        pauses.append(pause)
    assert pauses[:3] == [2, 4, 8] and pauses[-1] == MAX_PAUSE
    policy.taken(FIRST_DRAFT, 1)  # a partly taken guess ends the run of refusals
    assert policy.refusals == 0 and policy.pause == 0 and policy.length == FIRST_DRAFT
