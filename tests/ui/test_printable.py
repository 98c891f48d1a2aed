"""Control characters from the model, a tool or the user are shown, never sent to the terminal."""

from __future__ import annotations

from pathlib import Path

from tests.scripted import ScriptedBackend
from tests.ui.harness import SIZE, make_app, send, wait_until
from tests.ui.scenarios import call
from tui_agent.printable import printable
from tui_agent.tools.base import NoTools, ToolSpec
from tui_agent.ui.widgets.transcript import ToolPanel

# Retitles the terminal, then colours the rest red: what a hostile file or reply could hold.
HOSTILE = "\x1b]0;PWNED\x07\x1b[31mred"


def test_control_characters_become_visible_symbols() -> None:
    assert printable(HOSTILE) == "␛]0;PWNED␇␛[31mred"
    assert printable("tab\tnew\nline\r\n") == "tab\tnew\nline\r\n"
    assert printable("\x00\x7f\x9b") == "␀␡\ufffd"  # NUL, DEL and C1's CSI


async def test_no_escape_reaches_the_screen_from_a_reply_or_a_tool(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [f"Reading it. {HOSTILE}\n" + call("read_file", path="hostile.txt"), f"Done {HOSTILE}"]
    )
    app = make_app(tmp_path, backend)
    (Path(app.config.tools.workspace_root) / "hostile.txt").write_text(f"file says {HOSTILE}\n")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, f"you typed {HOSTILE}")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the answer")
        await pilot.pause()
        screen = app.export_screenshot()
        assert "\x1b" not in screen and "\x07" not in screen
        for shown in ("you typed ␛]0;PWNED␇", "Reading it. ␛]0;PWNED", "file says ␛]0;PWNED"):
            assert shown in screen.replace("&#160;", " "), shown


async def open_history_after_another_session(pilot) -> None:  # type: ignore[no-untyped-def]
    """Start a second session (one exchange), then open the history browser over it."""
    app = pilot.app
    await pilot.press("ctrl+n")
    await send(pilot, "other")
    await wait_until(pilot, lambda: app.completed_prompts == 2, what="the second session")
    await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "HistoryScreen", what="browser")


async def test_no_escape_reaches_the_screen_from_the_history(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [call("read_file", path="hostile.txt"), f"Stored {HOSTILE}", "Another session."]
    )
    app = make_app(tmp_path, backend)
    (Path(app.config.tools.workspace_root) / "hostile.txt").write_text(f"file says {HOSTILE}\n")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, f"title {HOSTILE}")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the first session")
        await open_history_after_another_session(pilot)
        await pilot.press("down")  # the first session, with its preview
        await pilot.pause(0.3)
        browser = app.export_screenshot()
        assert "\x1b" not in browser and "title ␛]0;PWNED" in browser.replace("&#160;", " ")
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: app.screen is app.screen_stack[0], what="resumed")
        await wait_until(pilot, lambda: "Stored" in app.export_screenshot(), what="restored")
        restored = app.export_screenshot().replace("&#160;", " ")
        assert "\x1b" not in restored
        assert "Stored ␛]0;PWNED" in restored and "file says ␛]0;PWNED" in restored


class HostileServerTools(NoTools):
    """What a hostile MCP server could list."""

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(f"evil{HOSTILE}", f"does things {HOSTILE}", server=f"srv{HOSTILE}")]


async def test_no_escape_reaches_the_screen_from_tool_descriptions(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend(["x"]), tools=HostileServerTools())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/tools")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ShowText", what="/tools")
        await pilot.pause()
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "\x1b" not in shown and "does things ␛]0;PWNED" in shown


# CSI as one C1 character: JSON with ensure_ascii off (how arguments are shown) leaves it as is.
C1_CSI = "\x9b2J"


async def test_no_c1_control_reaches_the_screen_from_tool_arguments(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [call("read_file", path=f"missing{C1_CSI}.txt"), "No such file.", "Another session."]
    )
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "read it")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the answer")
        await pilot.pause()
        assert "\x9b" not in app.export_screenshot()
        await open_history_after_another_session(pilot)
        await pilot.press("down", "enter", "enter")  # resume the first session
        await wait_until(pilot, lambda: bool(app.query(ToolPanel)), what="the restored panel")
        await pilot.pause()
        restored = app.export_screenshot()
        assert "\x9b" not in restored and "missing\ufffd2J.txt" in restored
