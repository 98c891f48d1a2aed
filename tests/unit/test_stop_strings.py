"""Stop strings in a streamed reply: held back while they may be starting, cut when they appear."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tui_agent.engine.generation import _StopMatcher


def run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    matcher = _StopMatcher(stops)
    shown, stopped = "", False
    for piece in pieces:
        out, stopped = matcher.feed(piece)
        shown += out
        if stopped:
            return shown, True
    return shown + matcher.finish(""), False


def test_a_stop_split_across_pieces_is_never_shown() -> None:
    assert run(("</s>",), ["Hello </", "s> more"]) == ("Hello ", True)
    assert run(("</s>",), ["Hello </", "t>"]) == ("Hello </t>", False)
    assert run((), ["a", "b"]) == ("ab", False)


@given(
    st.text(alphabet="ab</>x", max_size=40),
    st.lists(st.sampled_from(["</a>", "b", "xx"]), max_size=3),
    st.lists(st.integers(1, 5), min_size=1, max_size=10),
)
def test_what_shows_is_the_text_up_to_the_first_stop(
    text: str, stops: list[str], sizes: list[int]
) -> None:
    pieces, position, index = [], 0, 0
    while position < len(text):
        size = sizes[index % len(sizes)]
        pieces.append(text[position : position + size])
        position, index = position + size, index + 1
    shown, stopped = run(tuple(stops), pieces)
    hits = [text.find(s) for s in stops if s and s in text]
    assert stopped == bool(hits)
    assert shown == (text[: min(hits)] if hits else text)
