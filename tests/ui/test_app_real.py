"""The chat app on the real demo model: streamed text arrives, Escape cancels."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from tests.fake_hub import populate_cache
from tests.ui.harness import SIZE, make_config, send, wait_until
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.setup import build_tools
from tui_agent.ui.app import LlamachatApp
from tui_agent.ui.screens.model_picker import ModelPicker
from tui_agent.ui.widgets.transcript import AssistantMessage

pytestmark = pytest.mark.model


async def test_real_model_streams_and_cancels(tmp_path: Path, demo_gguf: Path) -> None:
    config = make_config(
        tmp_path,
        "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 400\n[model]\nn_ctx = 2048\nn_threads = 2\n",
    )
    session = Session.from_config(
        config, str(demo_gguf), SessionStore(tmp_path / "h.db"), lambda: build_tools(config)
    )
    app = LlamachatApp(session, config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, timeout=60, what="the demo model to load")
        assert "read_file" in [s.name for s in session.tool_specs()], "tools start before the model"
        assert app.status.info.context_size == 2048
        assert "read_file" in [s.name for s in session.tool_specs()], (
            "tools start before the model loads"
        )
        await send(pilot, "Write a long story about a dragon who learns to cook.")
        await wait_until(
            pilot,
            lambda: any(len(m.text) > 40 for m in app.query(AssistantMessage)),
            timeout=60,
            what="streamed text",
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.completed_prompts == 1, timeout=30, what="the cancel")
        reply = app.query_one(AssistantMessage)
        assert reply.has_class("interrupted")
        assert app.status.info.tokens_per_second > 0
        await send(pilot, "Say hi.")
        await wait_until(
            pilot, lambda: app.completed_prompts == 2, timeout=60, what="a second prompt"
        )
        assert len(app.query(AssistantMessage)) == 2
    session.close()


async def test_real_model_switch_from_the_picker(
    tmp_path: Path, demo_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/model lists a GGUF in the Hugging Face cache (offline); picking it loads it for real."""
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    populate_cache(cache, "acme/smol-GGUF", {"smol.Q4_1.gguf": demo_gguf})
    config = make_config(
        tmp_path,
        "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 24\n[model]\nn_ctx = 2048\n",
    )
    session = Session.from_config(
        config, None, SessionStore(tmp_path / "h.db"), lambda: build_tools(config)
    )
    app = LlamachatApp(session, config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, timeout=60, what="the demo model to load")
        await send(pilot, "/model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")
        await pilot.press("down", "down", "down", "enter")
        await wait_until(
            pilot,
            lambda: session.model_label == "acme/smol-GGUF:smol.Q4_1.gguf" and app.model_ready,
            timeout=60,
            what="the cached model",
        )
        await send(pilot, "Say hi.")
        await wait_until(pilot, lambda: app.completed_prompts == 1, timeout=60, what="a reply")
        assert app.query_one(AssistantMessage).text
    session.close()


async def test_a_configured_server_in_the_picker_and_back(
    tmp_path: Path, demo_gguf: Path, cpp_server: str
) -> None:
    """The picker offers [model] servers; picking one runs the chat on it (status: remote), and
    /model with a file's path comes back in-process."""
    config = make_config(
        tmp_path,
        "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 24\n"
        f'[model]\nn_ctx = 2048\nservers = ["{cpp_server}"]\n',
    )
    session = Session.from_config(
        config, str(demo_gguf), SessionStore(tmp_path / "h.db"), lambda: build_tools(config)
    )
    app = LlamachatApp(session, config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, timeout=60, what="the demo model to load")
        await send(pilot, "/model")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        [server] = [i for i, label in enumerate(labels) if label.strip().startswith(cpp_server)]
        assert "server (OpenAI-compatible API)" in labels[server]
        options.highlighted = server
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: session.model_label == cpp_server and app.model_ready,
            timeout=30,
            what="the server",
        )
        assert app.status.info.remote and app.status.info.context_size == 4096
        await send(pilot, "Say hi.")
        await wait_until(pilot, lambda: app.completed_prompts == 1, timeout=60, what="a reply")
        assert app.query_one(AssistantMessage).text
        await send(pilot, f"/model {demo_gguf}")
        await wait_until(
            pilot,
            lambda: session.model_label == str(demo_gguf) and app.model_ready,
            timeout=60,
            what="back in-process",
        )
        assert not app.status.info.remote and app.status.info.context_size == 2048
        await send(pilot, "Say hi.")
        await wait_until(pilot, lambda: app.completed_prompts == 2, timeout=60, what="a reply")
    session.close()
