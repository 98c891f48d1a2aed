"""How a reply streams into the app (complete blocks as Markdown, the rest as a plain tail), how
long transcripts are windowed, and how the worker wakes the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from tests.scripted import ScriptedBackend
from tests.ui.harness import SIZE, make_app, send, wait_until
from tests.ui.scenarios import call
from tui_agent.config import Config
from tui_agent.events import Completed, PermissionRequest, TextDelta, ToolStart
from tui_agent.session import Session
from tui_agent.tools.base import NoTools
from tui_agent.ui.app import LlamachatApp
from tui_agent.ui.widgets.transcript import (
    AssistantMessage,
    EarlierEntries,
    FoldedEntries,
    NoticeLine,
    ReplyTail,
    ToolPanel,
    Transcript,
    UserMessage,
    settled_length,
)


@pytest.mark.parametrize(
    ("text", "settled"),
    [
        ("no blank line yet", 0),
        ("one paragraph\n", 0),
        ("one paragraph\n\n", len("one paragraph\n\n")),
        ("one\n\ntwo\n\nthree in prog", len("one\n\ntwo\n\n")),
        ("```py\na = 1\n\nb = 2\n", 0),  # a blank line inside a fence settles nothing
        ("```py\na = 1\n\nb = 2\n```\n", len("```py\na = 1\n\nb = 2\n```\n")),
        ("```py\na = 1\n```", 0),  # the closing fence line is not finished yet
        ("~~~\nx\n~~~\nafter", len("~~~\nx\n~~~\n")),
        ("a\n   \nb", len("a\n   \n")),  # a line of spaces is blank
        ("```\nx\n```python\n\ny", 0),  # a line with an info string does not close a fence
        ("~~~\n```\n\n~~~\n", len("~~~\n```\n\n~~~\n")),  # nor does the other fence kind
        ("a\x0cb\n\nc", len("a\x0cb\n\n")),  # only newlines end lines
    ],
)
def test_settled_length(text: str, settled: int) -> None:
    assert settled_length(text, 0) == settled


def test_settled_length_scans_from_the_last_settled_point() -> None:
    text = "one\n\ntwo\n\nthree"
    assert settled_length(text, len("one\n\n")) == len("one\n\ntwo\n\n")
    assert settled_length(text, len("one\n\ntwo\n\n")) == len("one\n\ntwo\n\n")


@given(st.text(alphabet="ab `~\n", max_size=80), st.integers(min_value=1, max_value=7))
def test_settling_piece_by_piece_never_splits_inside_a_fence(text: str, step: int) -> None:
    """Fed the way the app feeds it, the settled part only grows, ends at a line end, and is what
    one scan from the start finds (so no scan ever started inside a fence)."""
    settled = 0
    for end in range(step, len(text) + step, step):
        new = settled_length(text[:end], settled)
        assert settled <= new <= min(end, len(text))
        if new:
            assert text[new - 1] == "\n"
        assert new == settled_length(text[:end], 0)
        settled = new


REPLY = (
    "First paragraph with **bold**.\n\n"
    "- item one\n- item two\n\n"
    "Unfinished paragraph that goes on, then it ends."
)


async def stream_until_paused(pilot, backend: ScriptedBackend) -> AssistantMessage:  # type: ignore[no-untyped-def]
    """Send a prompt and let the scripted reply run up to its pause."""
    app = pilot.app
    assert backend.pause_after is not None
    paused_length = backend.pause_after * backend.piece_size
    await send(pilot, "write")
    await wait_until(
        pilot,
        lambda: (
            bool(app.query(AssistantMessage))
            and len(app.query_one(AssistantMessage).text) == paused_length
        ),
        what="the stream to reach the pause",
    )
    return app.query_one(AssistantMessage)


async def start_reply(pilot, text: str) -> tuple[AssistantMessage, ReplyTail]:  # type: ignore[no-untyped-def]
    """A streaming reply in the transcript, laid out with ``text`` in its tail."""
    reply = AssistantMessage(streaming=True)
    await pilot.app.transcript.add(reply)
    await reply.append(text)
    await pilot.pause()
    return reply, pilot.app.query_one(ReplyTail)


def reserve_lines(monkeypatch: pytest.MonkeyPatch, lines: int) -> None:
    """Make the tail reserve ``lines`` at a time whatever the screen size."""
    monkeypatch.setattr(ReplyTail, "RESERVE_LINES", lines)
    monkeypatch.setattr(ReplyTail, "RESERVE_SHARE", 10_000)


async def test_complete_blocks_render_while_the_rest_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused stream (a slow model) still hands its complete blocks over, after COMMIT_SECONDS."""
    monkeypatch.setattr(AssistantMessage, "COMMIT_SECONDS", 0.0)
    piece = 4
    paused_at = REPLY.index("goes on") // piece
    backend = ScriptedBackend([REPLY], piece_size=piece, pause_after=paused_at)
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        reply = await stream_until_paused(pilot, backend)
        await wait_until(pilot, lambda: bool(app.query("MarkdownBulletList")), what="the list")
        settled = "First paragraph with **bold**.\n\n- item one\n- item two\n\n"
        assert reply.markdown.source == settled
        assert reply.streaming_tail == REPLY[len(settled) : paused_at * piece]
        assert app.query(ReplyTail)

        backend.resume.set()
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the end of the reply")
        await wait_until(pilot, lambda: not app.query(ReplyTail), what="the tail to go")
        assert reply.markdown.source == REPLY and reply.streaming_tail == ""


async def test_blocks_wait_while_the_tail_fits_its_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the tail has room and no block has waited long, nothing reaches Markdown until the
    reply ends: a hand-over would be a layout pass of its own."""
    reserve_lines(monkeypatch, 50)
    monkeypatch.setattr(AssistantMessage, "COMMIT_SECONDS", 3600.0)
    backend = ScriptedBackend([REPLY], piece_size=4, pause_after=len(REPLY) // 4 - 2)
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        reply = await stream_until_paused(pilot, backend)
        await pilot.pause(0.3)
        assert reply.markdown.source == "" and reply.streaming_tail == reply.text
        backend.resume.set()
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the end")
        await wait_until(pilot, lambda: reply.markdown.source == REPLY, what="the final render")


async def test_a_tail_that_outgrows_its_reserve_hands_over_its_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reserve_lines(monkeypatch, 4)
    monkeypatch.setattr(AssistantMessage, "COMMIT_SECONDS", 3600.0)
    app = make_app(tmp_path, ScriptedBackend(["x"]))
    async with app.run_test(size=SIZE) as pilot:
        # Three lines with the cursor's.
        reply, tail = await start_reply(pilot, "First paragraph.\n\nSecond")
        assert tail.size.height == 4 and reply.markdown.source == ""
        await reply.append(" paragraph,\nline two,\nline three")  # five lines: outgrown
        assert reply.markdown.source == "First paragraph.\n\n"
        assert reply.streaming_tail == "Second paragraph,\nline two,\nline three"
        await pilot.pause()
        assert tail.size.height == 4


async def test_a_tail_that_has_grown_keeps_whole_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the small first reserve, blocks handed over do not shrink the tail back to it (each
    shrink and regrowth would be two more layout passes)."""
    monkeypatch.setattr(ReplyTail, "RESERVE_LINES", 2)
    monkeypatch.setattr(ReplyTail, "RESERVE_SHARE", SIZE[1] // 6)  # steps of 6 lines
    monkeypatch.setattr(AssistantMessage, "COMMIT_SECONDS", 3600.0)
    app = make_app(tmp_path, ScriptedBackend(["x"]))
    async with app.run_test(size=SIZE) as pilot:
        reply, tail = await start_reply(pilot, "a\nb")
        assert tail.size.height == 2
        await reply.append("\nc\nd\ne")  # five lines, no finished block: a step of 6
        await pilot.pause()
        assert tail.size.height == 6 and reply.markdown.source == ""
        await reply.append("\n\nf")  # seven lines: the finished block goes, the step stays
        await pilot.pause()
        assert reply.markdown.source == "a\nb\nc\nd\ne\n\n" and reply.streaming_tail == "f"
        assert tail.size.height == 6


async def test_the_tail_repaints_only_the_rows_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, ScriptedBackend(["x"]))
    async with app.run_test(size=SIZE) as pilot:
        reply, tail = await start_reply(pilot, "line one\nline two\nline th")
        refreshed: list[tuple[tuple[Region, ...], dict[str, bool]]] = []
        monkeypatch.setattr(tail, "refresh", lambda *regions, **kw: refreshed.append((regions, kw)))
        await reply.append("ree")
        assert refreshed == [((Region(0, 2, tail.size.width, 1),), {})]
        rows = [tail.render_line(y).text.rstrip() for y in range(4)]
        assert rows == ["line one", "line two", "line three" + ReplyTail.CURSOR, ""]


async def test_tail_reserves_height_in_steps(tmp_path: Path) -> None:
    """RESERVE_LINES first, then whole steps of a RESERVE_SHARE of the screen."""
    first = ReplyTail.RESERVE_LINES
    step = max(first, SIZE[1] // ReplyTail.RESERVE_SHARE)
    backend = ScriptedBackend(["x"])
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        reply, tail = await start_reply(pilot, "one line")
        assert tail.size.height == first
        await reply.append(" and more words" * 120)  # more wrapped lines than a step
        await pilot.pause()
        assert tail.size.height % step == 0 and tail.size.height > step
        await reply.finish()
        await pilot.pause()
        assert not app.query(ReplyTail) and reply.markdown.source == reply.text


async def test_the_reply_box_comes_with_the_prompt(tmp_path: Path) -> None:
    """The box is there (cursor, reserved lines) while the model reads the prompt, and the
    words go into that same box."""
    backend = ScriptedBackend(["The answer."], pause_after=0)
    app = make_app(tmp_path, backend, tools=NoTools())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="model ready")
        await send(pilot, "question")
        await wait_until(pilot, lambda: len(backend.prompts) == 1, what="the model reading")
        await pilot.pause()
        user, box = app.transcript.entries
        assert isinstance(user, UserMessage) and isinstance(box, AssistantMessage)
        tail = box.query_one(ReplyTail)
        assert box.text == "" and tail.size.height == ReplyTail.RESERVE_LINES
        assert ReplyTail.CURSOR in app.export_screenshot()
        backend.resume.set()
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the answer")
        assert app.transcript.entries == [user, box] and box.text == "The answer."


async def test_an_empty_reply_box_goes_away(tmp_path: Path) -> None:
    """A model that goes straight to a tool call, or is cancelled before its first word, leaves
    no empty box behind."""
    backend = ScriptedBackend([call("read_file", path="notes.txt"), "Found it.", "never said"])
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "read my notes")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the answer")
        kinds = [type(entry) for entry in app.transcript.entries]
        assert kinds == [UserMessage, ToolPanel, AssistantMessage]

        backend.pause_after = 0
        await send(pilot, "and now?")
        await wait_until(pilot, lambda: len(backend.prompts) == 3, what="the model reading")
        await pilot.press("escape")
        backend.resume.set()
        await wait_until(pilot, lambda: app.completed_prompts == 2, what="cancelled")
        last = app.transcript.entries[-2:]
        assert isinstance(last[0], UserMessage) and isinstance(last[1], NoticeLine)
        assert "cancelled" in str(last[1].render())
        assert len(app.query(AssistantMessage)) == 1


async def test_long_transcripts_show_the_newest_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Transcript, "SHOWN_ENTRIES", 4)
    backend = ScriptedBackend([f"answer {i}" for i in range(5)])
    app = make_app(tmp_path, backend, tools=NoTools())
    async with app.run_test(size=SIZE) as pilot:
        for i in range(4):
            await send(pilot, f"question {i}")
            await wait_until(pilot, lambda i=i: app.completed_prompts == i + 1, what=f"answer {i}")
        transcript = app.transcript
        shown = [e for e in transcript.entries if e.display]
        # The window was applied when "question 3" and its reply's box were added: 8 entries,
        # the newest 4 shown.
        assert len(transcript.entries) == 8 and len(shown) == 4
        earlier = app.query_one(EarlierEntries)
        assert earlier.display and "4 earlier entries hidden" in str(earlier.render())

        earlier.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert all(e.display for e in transcript.entries) and not earlier.display

        await send(pilot, "question 4")
        await wait_until(pilot, lambda: app.completed_prompts == 5, what="answer 4")
        assert len([e for e in transcript.entries if e.display]) == 4
        assert "6 earlier entries hidden" in str(earlier.render())

        await pilot.press("ctrl+n")  # a new session empties the transcript
        await wait_until(pilot, lambda: not transcript.entries, what="an empty transcript")
        assert not earlier.display


LONG_ANSWER = "\n\n".join(f"Paragraph {i} of a long answer, with a few words." for i in range(8))


async def converse(pilot: Pilot[object], app: LlamachatApp, prompts: int) -> None:
    """Send ``prompts`` questions, each once the answer before it is complete."""
    for _ in range(prompts):
        done = app.completed_prompts + 1
        await send(pilot, f"question {done - 1}")
        await wait_until(
            pilot, lambda done=done: app.completed_prompts == done, what=f"answer {done - 1}"
        )


def _positions(transcript: Transcript) -> dict[Widget, int]:
    """Where each displayed entry starts in the transcript's scrollable area."""
    return {e: e.virtual_region.y for e in transcript.entries if e.display}


async def test_entries_far_above_the_view_fold_into_one_spacer_and_unfold_on_scroll(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend([LONG_ANSWER] * 6)
    app = make_app(tmp_path, backend, tools=NoTools())
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.transcript
        await converse(pilot, app, 5)
        before = _positions(transcript)
        height = transcript.virtual_size.height

        await converse(pilot, app, 1)
        folded = transcript.folded
        spacer = transcript.query_one(FoldedEntries)
        # Only whole entries well above the view fold; those near it stay drawn.
        assert len(folded) >= 4 and folded == transcript.entries[: len(folded)]
        assert spacer.display and not any(e.display for e in folded)
        view_top = transcript.scroll_y
        assert spacer.virtual_region.bottom <= view_top
        # The spacer is exactly as tall as what it stands for: nothing drawn moved.
        folded_layout = _positions(transcript)
        assert all(folded_layout[e] == y for e, y in before.items() if e in folded_layout)
        spacer_top = spacer.virtual_region.y
        assert transcript.virtual_size.height > height

        bottom = transcript.scroll_y
        for _ in range(20):  # PageUp in the prompt box, until the folded entries are back
            if not transcript.folded or not transcript.scroll_y:
                break
            await pilot.press("pageup")
            await pilot.pause()
        assert app.focused is app.prompt and transcript.scroll_y < bottom
        assert not transcript.folded and not spacer.display
        assert all(e.display for e in transcript.entries)
        unfolded = _positions(transcript)
        assert unfolded[folded[0]] == spacer_top
        assert all(unfolded[e] == y for e, y in folded_layout.items())
        for _ in range(20):
            if transcript.scroll_y >= bottom:
                break
            await pilot.press("pagedown")
            await pilot.pause()
        assert transcript.scroll_y == bottom


async def test_a_width_change_unfolds_and_the_earlier_count_leaves_folded_entries_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Transcript, "SHOWN_ENTRIES", 8)
    backend = ScriptedBackend([LONG_ANSWER] * 7)
    app = make_app(tmp_path, backend, tools=NoTools())
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.transcript
        await converse(pilot, app, 6)
        assert transcript.folded
        # 12 entries: 4 beyond the window of 8; the folded ones are in the window.
        assert "4 earlier entries hidden" in str(transcript.earlier.render())
        assert all(e in transcript.entries[-8:] for e in transcript.folded)

        await pilot.resize_terminal(SIZE[0] - 30, SIZE[1])
        await pilot.pause()
        assert not transcript.folded
        assert all(e.display for e in transcript.entries[-8:])

        await converse(pilot, app, 1)  # folds again, measured at the new width
        folded = transcript.folded
        spacer = transcript.query_one(FoldedEntries)
        assert folded and spacer.virtual_region.height > 0
        shown = [e for e in transcript.entries if e.display]
        assert (
            shown[0].virtual_region.y == spacer.virtual_region.bottom + shown[0].styles.margin.top
        )


def test_only_events_other_than_text_wake_the_app() -> None:
    wakes: list[int] = []
    session = Session(Config(), lambda spec: lambda sink: None, NoTools())  # type: ignore[arg-type, return-value]
    session.wake = lambda: wakes.append(1)
    session._deliver(TextDelta("a"))
    session._deliver(TextDelta("b"))
    assert wakes == [] and session.events.qsize() == 2
    session._deliver(ToolStart("c1", "read_file", {}))
    session._deliver(PermissionRequest("r1", "c1", "write_file", {}, "writes files", "write_file"))
    session._deliver(Completed("done"))
    assert len(wakes) == 3 and session.events.qsize() == 5
    session.wake_on_text = True  # as `serve` sets it: each token goes out as it comes
    session._deliver(TextDelta("d"))
    assert len(wakes) == 4
