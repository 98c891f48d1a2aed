"""Drive the real Textual app with Pilot: a scripted model or the real one, real tools and store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from tests.scripted import ScriptedBackend
from tui_agent.config import Config, load_config
from tui_agent.events import ModelLoaded
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.base import ToolExecutor
from tui_agent.tools.setup import build_tools
from tui_agent.ui.app import LlamachatApp

SIZE = (110, 36)


def make_config(tmp_path: Path, extra: str = "") -> Config:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    (workspace / "notes.txt").write_text("the lighthouse keeper sleeps in the tower\n")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[tools]\nworkspace_root = "{workspace}"\n[history]\ndb_path = "{tmp_path / "h.db"}"\n{extra}'
    )
    return load_config(path)


def make_app(
    tmp_path: Path,
    backend: ScriptedBackend,
    config: Config | None = None,
    tools: ToolExecutor | None = None,
    store: SessionStore | None = None,
) -> LlamachatApp:
    config = config or make_config(tmp_path)
    stack = None
    if tools is None:
        stack = build_tools(config)
        stack.start()
        tools = stack.gate
    store = store or SessionStore(Path(config.history.db_path))

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        def load(sink):  # type: ignore[no-untyped-def]
            sink(ModelLoaded(backend.name, "scripted", 0.0, backend.n_ctx, "scripted template"))
            return backend

        return load

    session = Session(config, loader, tools, store, tool_stack=stack)
    return LlamachatApp(session, config)


async def wait_until(
    pilot: Pilot[object],
    predicate: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "condition",
) -> None:
    """Let the app run until predicate() holds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            notes = [str(n.render()) for n in pilot.app.query(".notice")]
            raise AssertionError(f"timed out waiting for {what}; notices on screen: {notes}")
        await pilot.pause(0.02)
    await pilot.pause()


async def send(pilot: Pilot[object], text: str) -> None:
    """Type a prompt and press Enter (a prompt sent while the model loads waits for it)."""
    prompt = pilot.app.query_one("#prompt")
    prompt.text = text  # type: ignore[attr-defined]
    prompt.focus()
    await pilot.press("enter")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
