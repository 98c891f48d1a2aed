"""Pilot tests of the chat app with a scripted model, real tools, a real SQLite store."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path

import pytest
from textual.widgets import Collapsible, OptionList, Static

from tests.fake_hub import populate_cache
from tests.scripted import ScriptedBackend
from tests.ui.harness import SIZE, make_app, make_config, send, wait_until
from tui_agent.errors import HistoryUnavailableError
from tui_agent.events import DownloadProgress
from tui_agent.ui.screens.dialogs import Confirm
from tui_agent.ui.screens.history import HistoryScreen
from tui_agent.ui.screens.model_picker import ModelPicker
from tui_agent.ui.screens.permission import GRACE_SECONDS, PermissionScreen
from tui_agent.ui.widgets.transcript import (
    AssistantMessage,
    CompactionNotice,
    NoticeLine,
    ToolPanel,
    UserMessage,
)


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def replies(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.text for m in app.query(AssistantMessage)]


async def test_streams_a_reply(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        ["Hello! **Markdown** works.\n\n```python\nprint('hi')\n```\n"], piece_size=2
    )
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="model ready")
        await send(pilot, "hi there")
        await wait_until(
            pilot, lambda: app.status.info.state == "ready" and replies(app), what="reply"
        )
        assert [str(m.render()) for m in app.query(UserMessage)] == ["hi there"]
        assert replies(app) == ["Hello! **Markdown** works.\n\n```python\nprint('hi')\n```\n"]
        code = app.query("MarkdownFence")
        assert code, "the code block is rendered as a fence at the end of the stream"
        assert app.status.info.tokens_per_second > 0 and app.status.info.context_used > 0


async def test_read_only_tool_panel(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [call("read_file", path="notes.txt"), "The keeper sleeps in the tower."]
    )
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "where is the keeper?")
        await wait_until(
            pilot,
            lambda: len(replies(app)) == 1 and app.status.info.state == "ready",
            what="answer",
        )
        panel = app.query_one(ToolPanel)
        assert panel.tool_name == "read_file" and panel.status == "ok"
        assert "lighthouse keeper" in str(panel.query_one(".tool-output").render())


async def permission_flow(  # type: ignore[no-untyped-def]
    tmp_path: Path, keys: list[str], second_call: bool = False, extra_config: str = ""
):
    script = [call("write_file", path="out.txt", content="written by the agent\n")]
    if second_call:
        script.append(call("write_file", path="out.txt", content="again\n"))
    script.append("Done.")
    backend = ScriptedBackend(script)
    config = make_config(tmp_path, extra_config)
    app = make_app(tmp_path, backend, config)
    workspace = Path(config.tools.workspace_root)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write the file")
        await wait_until(
            pilot, lambda: isinstance(app.screen, PermissionScreen), what="permission prompt"
        )
        screen = app.screen
        assert isinstance(screen, PermissionScreen)
        assert (
            screen.request.tool == "write_file" and "+written by the agent" in screen.request.diff
        )
        assert app.status.info.state == "waiting for permission"
        assert not (workspace / "out.txt").exists(), "nothing runs while the prompt is open"
        await pilot.pause(GRACE_SECONDS + 0.05)
        for key in keys:
            await pilot.press(key)
        await wait_until(
            pilot,
            lambda: app.status.info.state == "ready" or isinstance(app.screen, PermissionScreen),
            what="after the answer",
        )
        asked_twice = isinstance(app.screen, PermissionScreen)
        if asked_twice:
            await pilot.pause(GRACE_SECONDS + 0.05)
            await pilot.press("y")
            await wait_until(pilot, lambda: app.status.info.state == "ready", what="done")
        return (
            app,
            backend,
            workspace,
            config,
            asked_twice,
            [p.status for p in app.query(ToolPanel)],
        )


async def test_allow_once(tmp_path: Path) -> None:
    _app, _, workspace, _, asked_twice, statuses = await permission_flow(
        tmp_path, ["y"], second_call=True
    )
    assert asked_twice, "allow once must ask again next time"
    assert (workspace / "out.txt").read_text() == "again\n" and statuses == ["ok", "ok"]


async def test_allow_for_session(tmp_path: Path) -> None:
    _, _, _workspace, config, asked_twice, statuses = await permission_flow(
        tmp_path, ["s"], second_call=True
    )
    assert not asked_twice and statuses == ["ok", "ok"]
    assert "permissions" not in tomllib.loads(config.path.read_text())


async def test_always_allow_saves_the_rule(tmp_path: Path) -> None:
    hand_written = (
        "# my settings, written by hand\n"
        "[agent]\n"
        "temperature = 0.1   # steady answers\n"
        "\n"
        "[permissions]\n"
        "# reading is fine\n"
        'allow = ["read_file"]\n'
    )
    _, _, workspace, config, _, _ = await permission_flow(
        tmp_path, ["a"], extra_config=hand_written
    )
    text = config.path.read_text()
    saved = tomllib.loads(text)
    assert saved["permissions"]["allow"] == ["read_file", "write_file(out.txt)"]
    assert (workspace / "out.txt").exists()
    for comment in ("# my settings, written by hand", "# steady answers", "# reading is fine"):
        assert comment in text, f"the user's comment {comment!r} survives the save"


async def test_deny_with_reason(tmp_path: Path) -> None:
    _app, backend, workspace, _, _, statuses = await permission_flow(
        tmp_path, ["n", *"not there", "enter"]
    )
    assert not (workspace / "out.txt").exists() and statuses == ["denied"]
    assert "not there" in backend.prompts[1], "the model is told why"


async def test_escape_in_the_reason_field_denies_and_the_turn_goes_on(tmp_path: Path) -> None:
    backend = ScriptedBackend([call("write_file", path="out.txt", content="x\n"), "Done."])
    app = make_app(tmp_path, backend)
    cancels: list[bool] = []
    app.action_cancel = lambda: cancels.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write the file")
        await wait_until(pilot, lambda: isinstance(app.screen, PermissionScreen), what="prompt")
        await pilot.pause(GRACE_SECONDS + 0.05)
        await pilot.press("n", "escape")
        await pilot.pause()
        assert not cancels, "the Esc ended the reason field; it did not also reach the app's cancel"
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the turn's end")
        assert [p.status for p in app.query(ToolPanel)] == ["denied"]
        assert replies(app) == ["Done."], "the model carried on after the denial"
        assert not app.query_one(AssistantMessage).has_class("interrupted")
    assert "did not allow" in backend.prompts[1] and "Reason:" not in backend.prompts[1]


async def test_escape_on_the_question_itself_cancels_the_turn(tmp_path: Path) -> None:
    backend = ScriptedBackend([call("write_file", path="out.txt", content="x\n"), "Done."])
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write the file")
        await wait_until(pilot, lambda: isinstance(app.screen, PermissionScreen), what="prompt")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the cancel")
        assert not isinstance(app.screen, PermissionScreen) and len(backend.prompts) == 1


async def test_grace_period_ignores_early_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "tui_agent.ui.screens.permission.GRACE_SECONDS", 1.5
    )  # room for a slow machine
    backend = ScriptedBackend([call("write_file", path="early.txt", content="x"), "ok"])
    config = make_config(tmp_path)
    app = make_app(tmp_path, backend, config)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write")
        await wait_until(pilot, lambda: isinstance(app.screen, PermissionScreen), what="prompt")
        await pilot.press("y")  # typed a moment too late for the prompt input: must not approve
        assert isinstance(app.screen, PermissionScreen)
        assert not (Path(config.tools.workspace_root) / "early.txt").exists()
        await pilot.pause(1.6)
        await pilot.press("n", "enter")
        await wait_until(pilot, lambda: app.status.info.state == "ready", what="done")


async def test_escape_cancels_the_stream(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        ["This is a long answer that will be cut off in the middle. " * 3, "next"],
        pause_after=4,
        piece_size=3,
    )
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "talk")
        await wait_until(pilot, lambda: bool(replies(app)), what="first text")
        await pilot.press("escape")
        backend.resume.set()
        await wait_until(pilot, lambda: app.status.info.state == "ready", what="cancelled")
        reply = app.query_one(AssistantMessage)
        assert reply.has_class("interrupted") and len(reply.text) < 30
        assert any("cancelled" in str(n.render()) for n in app.query(NoticeLine))
        await send(pilot, "again")
        await wait_until(pilot, lambda: "next" in replies(app), what="next prompt works")


async def test_compaction_notice(tmp_path: Path) -> None:
    from tui_agent.tools.base import NoTools

    backend = ScriptedBackend(["fine"] * 8, n_ctx=700, summaries=["The user asked about the sea."])
    config = make_config(tmp_path, "[agent]\ncompaction_keep_recent = 2\n")
    app = make_app(tmp_path, backend, config, tools=NoTools())
    async with app.run_test(size=SIZE) as pilot:
        for i in range(6):
            await send(pilot, f"question {i} " + "about the sea " * 20)
            await wait_until(pilot, lambda i=i: app.completed_prompts == i + 1, what=f"answer {i}")
            if app.query(CompactionNotice):
                break
        notice = app.query_one(CompactionNotice)
        assert notice.headline.startswith("Context compacted:") and "messages" in notice.headline
        assert (
            "of 700 tokens" in notice.headline and notice.summary == "The user asked about the sea."
        )


async def test_slash_completion_recall_and_help(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend(["a", "b"]))
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.query_one("#prompt")
        prompt.focus()
        await pilot.press("/", "h", "e")
        assert app.query_one("#completions").display
        await pilot.press("tab")
        assert prompt.text == "/help"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ShowText", what="help")
        await pilot.press("escape")
        await send(pilot, "first question")
        await wait_until(
            pilot, lambda: app.status.info.state == "ready" and replies(app), what="reply"
        )
        prompt.focus()
        await pilot.press("up")
        assert prompt.text == "first question"  # type: ignore[attr-defined]
        await pilot.press("down")
        assert prompt.text == ""  # type: ignore[attr-defined]
        await send(pilot, "/nonsense")
        await pilot.pause()


async def test_theme_switch_previews_and_saves(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    app = make_app(tmp_path, ScriptedBackend([]), config)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "llamachat-dark"
        await send(pilot, "/theme")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ThemePicker", what="picker")
        await pilot.press("down")
        previewed = app.theme
        assert previewed != "llamachat-dark", "moving in the list previews the theme"
        await pilot.press("escape")
        assert app.theme == "llamachat-dark", "escape goes back"
        await send(pilot, "/theme")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ThemePicker", what="picker")
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ != "ThemePicker", what="closed")
        assert tomllib.loads(config.path.read_text())["ui"]["theme"] == app.theme == previewed


async def test_history_search_resume_and_delete(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        [
            call("read_file", path="notes.txt"),
            "In the tower.",
            "Something else.",
            "Resumed and continuing.",
        ]
    )
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "where is the keeper?")
        await wait_until(pilot, lambda: "In the tower." in replies(app), what="first session")
        first_id = app.session.conversation.id  # type: ignore[union-attr]
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not app.query(UserMessage), what="new session")
        await send(pilot, "other topic")
        await wait_until(pilot, lambda: "Something else." in replies(app), what="second session")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="browser")
        history = app.screen
        assert history.query_one("DataTable").row_count == 2
        await pilot.press("ctrl+f", *"lighthouse")
        await wait_until(
            pilot,
            lambda: history.searching and history.query_one("DataTable").row_count == 1,
            what="search hit from a tool result",
        )
        assert history.selected_id() == first_id
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, HistoryScreen), what="resumed")
        await wait_until(pilot, lambda: "In the tower." in replies(app), what="transcript restored")
        panel = app.query_one(ToolPanel)
        assert panel.status == "ok" and "lighthouse" in str(
            panel.query_one(".tool-output").render()
        )
        await send(pilot, "and now?")
        await wait_until(pilot, lambda: "Resumed and continuing." in replies(app), what="continues")
        assert "where is the keeper?" in backend.prompts[-1], (
            "the model sees the resumed conversation"
        )
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="browser again")
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "Confirm", what="asks first")
        await pilot.press("n")
        assert app.session.store.count_sessions() == 2  # type: ignore[union-attr]
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "Confirm", what="asks again")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.session.store.count_sessions() == 1, what="deleted")  # type: ignore[union-attr]


async def test_model_load_failure_is_explained(tmp_path: Path) -> None:
    from tui_agent.errors import ModelNotFoundError
    from tui_agent.session import Session
    from tui_agent.store.sessions import SessionStore
    from tui_agent.tools.base import NoTools
    from tui_agent.ui.app import LlamachatApp

    config = make_config(tmp_path)

    def loader(spec):  # type: ignore[no-untyped-def]
        def fail(sink):  # type: ignore[no-untyped-def]
            raise ModelNotFoundError("model file not found: /nope.gguf", "check the path")

        return fail

    app = LlamachatApp(Session(config, loader, NoTools(), SessionStore(tmp_path / "x.db")), config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: app.status.info.state == "model failed", what="failure shown"
        )
        assert any("/nope.gguf" in str(n.render()) for n in app.query(NoticeLine))
        assert any("check the path\n/model picks another model" in n for n in notifications(app)), (
            "the core's hint, then this app's next step"
        )
        await send(pilot, "hello?")
        await pilot.pause()
        assert not app.query(UserMessage), "a prompt is not sent to a model that failed to load"


def notifications(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.message for n in app._notifications]


async def test_model_picker_switches_to_a_cached_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    populate_cache(cache, "acme/story-GGUF", {"story.Q4_0.gguf": b"GGUF" + b"\0" * 60})
    app = make_app(tmp_path, ScriptedBackend(["Once upon a time.", "Again."]))
    loads: list[str | None] = []
    load_scripted = app.session.backend_loader

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        loads.append(spec)
        return load_scripted(spec)

    app.session.backend_loader = loader

    async def open_picker() -> OptionList:
        await send(pilot, "/model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")
        return app.screen.query_one(OptionList)

    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="model ready")
        await send(pilot, "tell me a story")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")

        options = await open_picker()
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0].startswith("● tiny  running"), "the running model (the demo) is marked"
        assert options.highlighted == 0
        assert "acme/story-GGUF:story.Q4_0.gguf  64 B  Hugging Face cache" in labels[3]
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPicker), what="closed")
        await open_picker()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "already running demo" in notifications(app))
        assert loads == [None], "neither Esc nor the running model reloads"
        assert len(app.query(UserMessage)) == 1

        await open_picker()
        await pilot.press("down", "down", "down", "enter")
        await wait_until(
            pilot,
            lambda: loads == [None, "acme/story-GGUF:story.Q4_0.gguf"] and app.model_ready,
            what="the switch",
        )
        assert not app.query(UserMessage), "a new session starts on the new model"
        assert app.status.info.state == "ready"
        await send(pilot, "once more")
        await wait_until(pilot, lambda: app.completed_prompts == 2, what="a reply after it")
        assert replies(app) == ["Again."]
    sessions = app.session.store.list_sessions()  # type: ignore[union-attr]
    assert len(sessions) == 2 and sessions[-1].title.startswith("tell me a story"), (
        "the first session stays in the history"
    )


async def test_model_command_names_a_bad_model(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend([]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="model ready")
        await send(pilot, "/model huge")
        await wait_until(pilot, lambda: any("huge" in n for n in notifications(app)))
        [message] = [n for n in notifications(app) if "huge" in n]
        assert "unknown model preset 'huge'" in message and "presets are" in message
        assert app.model_ready and app.status.info.state == "ready", "the model keeps running"


async def test_the_palette_opens_the_model_picker(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend([]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"switch model", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")


def slow_download(sink) -> None:  # type: ignore[no-untyped-def]
    """A model download that reports progress for 30 s, unless the sink stops it."""
    for done in range(1, 3000):
        sink(DownloadProgress("big.gguf", done * 1000, 10_000_000, 1e6))
        time.sleep(0.01)
    raise AssertionError("the download went on after it was stopped")


async def test_escape_stops_a_download(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend([]))
    app.session.backend_loader = lambda spec: slow_download
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.info.state == "downloading", what="download")
        # the fraction and how long it has run: a slow phase at 0% does not look stuck
        assert re.search(r"downloading \d+% · \d+ s \(Esc stops\)", str(app.status.render_text()))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.status.info.state == "stopped", what="the stop")
        assert any("download of big.gguf stopped" in n for n in notifications(app))
        await send(pilot, "hello")
        await wait_until(
            pilot, lambda: any("Pick another with /model" in n for n in notifications(app))
        )
        assert not app.query(UserMessage)


async def test_reasoning_is_shown_collapsed_above_the_reply_and_restored(tmp_path: Path) -> None:
    thought = "The notes say the keeper sleeps in the tower, so I can answer directly."
    backend = ScriptedBackend(
        [f"<think>\n{thought}\n</think>\n\nIn the tower.", call("list_dir"), "Done."],
        piece_size=4,
    )
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "where is the keeper?")
        await wait_until(pilot, lambda: "In the tower." in replies(app), what="the reply")
        await wait_until(pilot, lambda: app.status.info.state == "ready", what="done")
        reply = app.query_one(AssistantMessage)
        box = reply.query_one(Collapsible)
        assert box.collapsed and box.title == f"reasoning ({len(thought.split())} words)"
        assert reply.reasoning.strip() == thought and "<think>" not in reply.text
        box.collapsed = False
        await pilot.pause()
        assert thought in str(reply.query_one(".reasoning-text", Static).render())
        session = app.session.conversation.id  # type: ignore[union-attr]
        store = app.session.store
        assert store is not None
        saved = [e for e in store.entries(session) if e.role == "assistant"]
        assert saved[0].data["reasoning"] == thought
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not app.query(UserMessage), what="new session")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="browser")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "In the tower." in replies(app), what="restored")
        restored = app.query(AssistantMessage).first()
        assert restored.reasoning == thought and restored.query_one(Collapsible).collapsed


async def test_a_theme_with_a_bad_colour_variable_is_skipped_and_the_app_stays_up(
    tmp_path: Path,
) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "bad.toml").write_text(
        'name = "bad"\nprimary = "#7aa2f7"\n[variables]\n"footer-key-foreground" = "nope"\n'
    )
    config = make_config(tmp_path, '[ui]\ntheme = "bad"\n')
    app = make_app(tmp_path, ScriptedBackend(["still here"]), config)
    app._theme_dirs = [themes]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        assert app.is_running and app.theme == "llamachat-dark"
        shown = [n.message for n in app._notifications]
        assert any("bad.toml: [variables] footer-key-foreground" in m for m in shown)
        await send(pilot, "hello")
        await wait_until(pilot, lambda: "still here" in replies(app), what="a reply")


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_an_unusable_history_offers_to_chat_unsaved(tmp_path: Path, answer: str) -> None:
    app = make_app(tmp_path, ScriptedBackend(["Hi."]))
    app.session.store = None
    app.session.history_problem = HistoryUnavailableError(
        "the history database /x/h.db cannot be opened: /x is a file, not a folder", "hint"
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
        assert "Chat without saving?" in str(app.screen.query_one(Static).render())
        await pilot.press(answer)
        if answer == "n":
            await wait_until(pilot, lambda: app.return_code == 1, what="the exit")
            return
        await send(pilot, "hello")
        await wait_until(pilot, lambda: replies(app) == ["Hi."], what="the reply")
        assert "not saved" in str(app.status.render_text())


async def test_a_switch_during_a_download_then_a_prompt_is_answered(tmp_path: Path) -> None:
    """The stopped download's late error belongs to the old worker: it must not mark the new
    model as failed (every prompt was refused while the status said ready)."""
    app = make_app(tmp_path, ScriptedBackend(["Hello from the new model."]))
    load_scripted = app.session.backend_loader

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        return slow_download if spec is None else load_scripted(spec)

    app.session.backend_loader = loader
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.info.state == "downloading", what="download")
        app.switch_model("tiny")
        await wait_until(pilot, lambda: app.model_ready, what="the new model")
        await send(pilot, "hello")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")
        assert replies(app) == ["Hello from the new model."]
        assert not any("could not be loaded" in n for n in notifications(app))


async def test_a_question_answered_by_an_earlier_esc_does_not_stay_open(tmp_path: Path) -> None:
    """Esc pressed while the permission question was on its way to the screen: the worker
    answered it (cancelled); the question arrives after, and closes when its result does."""
    from tui_agent.events import PermissionRequest, ToolResult

    app = make_app(tmp_path, ScriptedBackend([]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="the model")
        app.session.events.put(
            PermissionRequest("r9", "call00009", "write_file", {}, "changes a file", "")
        )
        app.session.events.put(
            ToolResult("call00009", "write_file", False, "cancelled", denied=True)
        )
        await app.pump_events()
        await pilot.pause()
        assert not isinstance(app.screen, PermissionScreen)


async def test_a_remote_model_is_marked_in_the_status_line(tmp_path: Path) -> None:
    from tui_agent.events import ModelLoaded

    backend = ScriptedBackend(["Hi."])
    app = make_app(tmp_path, backend)

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        def load(sink):  # type: ignore[no-untyped-def]
            sink(ModelLoaded("coder @ gpu:8080", "http://gpu:8080/v1", 0.0, 32768, "server"))
            return backend

        return load

    app.session.backend_loader = loader
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="the model")
        line = str(app.status.render_text())
        assert "coder @ gpu:8080 remote" in line and "32,768" in line


async def test_the_status_line_says_when_the_cpu_is_busy(tmp_path: Path) -> None:
    backend = ScriptedBackend(["A slow reply.", "A quick one."], busy_cores=1.9)
    app = make_app(tmp_path, backend)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="the model")
        await send(pilot, "Hello?")
        await wait_until(pilot, lambda: "tok/s" in str(app.status.render_text()), what="stats")
        assert "CPU busy: 1.9 cores used elsewhere" in str(app.status.render_text())
        backend.busy_cores = 0.1
        await send(pilot, "Again?")
        await wait_until(
            pilot, lambda: "CPU busy" not in str(app.status.render_text()), what="an idle CPU"
        )


async def test_the_status_line_gives_the_model_name_the_room_there_is(tmp_path: Path) -> None:
    from tui_agent.events import ModelLoaded

    name = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf @ gpu-box.example.org:8080"
    app = make_app(tmp_path, ScriptedBackend([]))

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        def load(sink):  # type: ignore[no-untyped-def]
            sink(ModelLoaded(name, "http://gpu-box.example.org:8080/v1", 0.0, 32768, "server"))
            return ScriptedBackend([])

        return load

    app.session.backend_loader = loader
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="the model")
        assert f"{name} remote" in str(app.status.render_text()), "whole at 200 columns"
        await pilot.resize_terminal(110, 30)
        await pilot.pause()
        line = str(app.status.render_text())
        assert "…" in line and "gpu-box.example.org:8080 remote" in line and "qwen2.5" in line
        assert len(line) <= 110, "the host kept whole, the model's middle cut, the line fits"


async def test_a_reply_cut_at_the_token_limit_is_marked(tmp_path: Path) -> None:
    app = make_app(
        tmp_path, ScriptedBackend(["Once upon a time there was"], finish_reason="length")
    )
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "tell me a story")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")
        reply = app.query_one(AssistantMessage)
        assert reply.has_class("cut") and reply.border_subtitle == "cut at the token limit"


async def test_the_tools_dialog_shows_each_tools_permission(tmp_path: Path) -> None:
    config = make_config(tmp_path, '[permissions]\ndeny = ["run_shell"]\n')
    app = make_app(tmp_path, ScriptedBackend([]), config)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/tools")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ShowText", what="/tools")
        shown = str(app.screen.body)  # type: ignore[attr-defined]
        lines = {line.split()[0]: line for line in shown.splitlines() if line.strip()}
        assert lines["read_file"].split()[1] == "runs"
        assert lines["write_file"].split()[1] == "asks"
        assert lines["run_shell"].split()[1] == "denied"


async def test_the_palette_offers_one_theme_command_the_one_that_saves(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend([]))
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Pick theme" in titles and "Theme" not in titles


async def test_status_after_a_resume_a_compaction_and_a_switch(tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend(["In the tower.", "Again."]))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "where is the keeper?")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")
        assert app.status.info.tokens_per_second > 0
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: app.status.info.context_used == 0, what="new session")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="browser")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: app.status.info.context_used > 0, what="the resumed context's size"
        )
        await send(pilot, "/compact")
        await wait_until(
            pilot,
            lambda: any("nothing to compact" in n.message for n in app._notifications),
            what="nothing to compact",
        )
        assert app.status.info.state == "ready", "not left saying compacting…"
        app.switch_model("demo")
        assert app.status.info.tokens_per_second == 0, "the old model's speed is not shown"


async def test_resuming_a_session_made_on_another_model_says_so(tmp_path: Path) -> None:
    from tui_agent.agent.conversation import Conversation, Message
    from tui_agent.store.sessions import SessionStore

    config = make_config(tmp_path)
    store = SessionStore(Path(config.history.db_path))
    earlier = Conversation()
    store.create_session(earlier, "qwen-coder-30b @ gpu-box:8080", "", "an older session")
    store.add_message(earlier.id, Message("user", "hello"))
    app = make_app(tmp_path, ScriptedBackend([]), config, store=store)
    app.session.initial = store.load_conversation(earlier.id)
    async with app.run_test(size=SIZE) as pilot:
        said = "this session was made on qwen-coder-30b @ gpu-box:8080; it continues on demo"
        await wait_until(
            pilot, lambda: any(said in str(n.render()) for n in app.query(NoticeLine)), what="it"
        )


async def test_up_recalls_prompts_from_earlier_runs(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first = make_app(tmp_path, ScriptedBackend(["One.", "Two."]), config)
    async with first.run_test(size=SIZE) as pilot:
        for text in ("first question", "second question"):
            await send(pilot, text)
            await wait_until(pilot, lambda: not first.session.busy and first.model_ready)
        await wait_until(pilot, lambda: first.completed_prompts == 2, what="both replies")
    first.session.close()
    again = make_app(tmp_path, ScriptedBackend([]), config)
    async with again.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(again.prompt.prompt_history) == 2, what="recall")
        again.prompt.focus()
        await pilot.press("up")
        assert again.prompt.text == "second question"
        await pilot.press("up")
        assert again.prompt.text == "first question"


async def test_export_asks_where_and_works_from_the_search_box(tmp_path: Path) -> None:
    from tui_agent.ui.screens.dialogs import AskText

    app = make_app(tmp_path, ScriptedBackend(["In the tower."]))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "where is the keeper?")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")
        session_id = app.session.conversation.id  # type: ignore[union-attr]
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="browser")
        await pilot.press("ctrl+f", *"keeper")  # the search box has the focus now
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: isinstance(app.screen, AskText), what="asks where")
        suggested = tmp_path / "exports" / f"llamachat-{session_id}.md"
        assert app.screen.query_one("Input").value == str(suggested)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: suggested.exists(), what="the file")
        assert "where is the keeper?" in suggested.read_text()
        await wait_until(pilot, lambda: any(str(suggested) in n for n in notifications(app)))
        assert not (Path.cwd() / f"llamachat-{session_id}.md").exists()


async def test_an_empty_chat_says_where_to_start(tmp_path: Path) -> None:
    from tui_agent.ui.widgets.transcript import Welcome

    app = make_app(tmp_path, ScriptedBackend(["Hi."]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.query(Welcome)), what="the welcome")
        assert "F1" in str(app.query_one(Welcome).render())
        await send(pilot, "hello")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")
        assert not app.query(Welcome), "the conversation takes its place"
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: bool(app.query(Welcome)), what="welcome again")


async def test_a_tool_panel_shows_the_wait_for_the_user_apart(tmp_path: Path) -> None:
    backend = ScriptedBackend([call("write_file", path="out.txt", content="x\n"), "Done."])
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write the file")
        await wait_until(pilot, lambda: isinstance(app.screen, PermissionScreen), what="prompt")
        await pilot.pause(GRACE_SECONDS + 0.8)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="done")
        header = str(app.query_one(ToolPanel).header.render())
        run, waited = header.split(" · ")[2:4]
        assert waited.startswith("waited for you ") and float(waited.split()[3]) >= 1.0
        assert float(run.split()[0]) < 1.0, "the run time leaves out the wait"


async def test_after_a_click_opens_a_tool_output_typing_goes_to_the_prompt(tmp_path: Path) -> None:
    from textual.widgets._collapsible import CollapsibleTitle

    from tui_agent.ui.widgets.prompt_input import PromptInput

    config = make_config(tmp_path)
    workspace = Path(config.tools.workspace_root)
    (workspace / "long.txt").write_text("".join(f"line {n}\n" for n in range(40)))
    app = make_app(tmp_path, ScriptedBackend([call("read_file", path="long.txt"), "Read."]), config)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "read it")
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply")
        panel = app.query_one(ToolPanel)
        await pilot.click(panel.query_one(CollapsibleTitle))
        await wait_until(pilot, lambda: not panel.query_one(Collapsible).collapsed, what="open")
        await wait_until(pilot, lambda: isinstance(app.focused, PromptInput), what="the focus")
        await pilot.press(*"next")
        assert app.prompt.text == "next" and not panel.query_one(Collapsible).collapsed


async def test_continuing_a_session_shows_its_context_size(tmp_path: Path) -> None:
    from tui_agent.agent.conversation import Conversation, Message
    from tui_agent.store.sessions import SessionStore

    config = make_config(tmp_path)
    store = SessionStore(Path(config.history.db_path))
    earlier = Conversation()
    store.create_session(earlier, "demo", "", "an older session")
    store.add_message(earlier.id, Message("user", "where is the keeper? " * 20))
    app = make_app(tmp_path, ScriptedBackend([]), config, store=store)
    app.session.initial = store.load_conversation(earlier.id)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.info.context_used > 0, what="ctx of -c")


async def test_a_restored_context_is_said(tmp_path: Path) -> None:
    from tui_agent.events import TurnStatistics

    app = make_app(tmp_path, ScriptedBackend([]))
    async with app.run_test(size=SIZE) as pilot:
        app.session.events.put(TurnStatistics(1, 1600, 1599, 10, 0.2, 30.0, 0.5, 1532, 0.12))
        await app.pump_events()
        await pilot.pause()
        assert "context restored (1,532 tokens) in 0.12 s" in notifications(app)
