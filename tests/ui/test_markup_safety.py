"""Text from a user, a model, a tool or the history is shown as written, never read as Textual
markup: a session titled "…[/INST]…" crashed `llamachat -c` and the history browser
(MarkupError), and "saved … to [permissions] allow" lost its "[permissions]"."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import DataTable

from tests.scripted import ScriptedBackend
from tests.ui.harness import SIZE, make_app, send, wait_until
from tui_agent.events import Error, Notice
from tui_agent.ui.screens.dialogs import Confirm
from tui_agent.ui.screens.history import HistoryScreen
from tui_agent.ui.widgets.transcript import AssistantMessage, NoticeLine, ToolPanel

MARKUP_LIKE = [
    "[/INST]",
    "[INST] hi [/INST]",
    "[bold]loud",
    "[/]",
    "[link=https://example.org]x[/link]",
    "[@click=app.quit]quit[/]",
    "[permissions] allow",
    "[red",
    "\x1b]0;retitled\x07 and \x1b[31mred",
    "nul\x00 and bell\x07",
]
HOSTILE = st.one_of(
    st.sampled_from(MARKUP_LIKE),
    st.text(
        alphabet=st.one_of(
            st.sampled_from(list("[]/=@\\\x1b\x07\x00\x7f\n")), st.characters(codec="utf-8")
        ),
        min_size=1,
        max_size=30,
    ),
)


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


async def shown_everywhere(tmp_path: Path, text: str) -> None:
    backend = ScriptedBackend([call("read_file", path=text), f"Reply: {text}"])
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, f"Q {text}")  # the session's title
        await wait_until(pilot, lambda: bool(app.query(AssistantMessage)) and not app.session.busy)
        assert app.query_one(ToolPanel)
        app.session.events.put(Notice(f"saved {text} to [permissions] allow"))
        app.session.events.put(Error(text, text, "tool"))
        await app.pump_events()
        await pilot.pause()
        assert any("[permissions] allow" in str(n.render()) for n in app.query(NoticeLine))
        assert any("to [permissions] allow" in n.message for n in app._notifications)
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="browser")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the row")
        await pilot.press("ctrl+f", *"Q", "enter")  # a search: the hit's title and snippet
        await wait_until(pilot, lambda: table.row_count == 1, what="the hit")
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="delete asks")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="back")
        await pilot.press("enter")  # resume: the toast names the title
        await wait_until(pilot, lambda: not isinstance(app.screen, HistoryScreen), what="resumed")
        await wait_until(
            pilot, lambda: any(n.message.startswith("resumed") for n in app._notifications)
        )
        await pilot.pause()
    assert app.return_code in (None, 0), "the app ran to the end"


# Each example drives the whole app (a few seconds): few examples, the known shapes always in.
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_hostile_text_is_shown_as_written_everywhere(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(shown_everywhere(Path(folder), text))


def test_every_markup_like_sample_in_one_title() -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(shown_everywhere(Path(folder), " ".join(MARKUP_LIKE)))
