"""`llamachat`: the chat app on the configured model."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tui_agent.commands.headless import session_to_continue
from tui_agent.commands.history_cmd import open_store
from tui_agent.config import Config, load_config
from tui_agent.errors import HistoryUnavailableError
from tui_agent.logfiles import route_python_logging
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.spec_cache import tools_key

if TYPE_CHECKING:
    from tui_agent.tools.setup import ToolStack


def run_chat(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store, problem = _history(config, args)
    initial = session_to_continue(store, args) if store is not None else None
    from tui_agent.session import Session
    from tui_agent.ui.app import LlamachatApp

    def tools() -> ToolStack:
        from tui_agent.tools.setup import build_tools  # on the tools' thread (see Session)

        return build_tools(config, args.allow, args.deny)

    key = tools_key(config, args.allow, args.deny, only_unasked=False)
    session = Session.from_config(config, args.model, store, tools, initial, key)
    session.history_problem = problem
    app = LlamachatApp(session, config)
    # Library log records go to a file; llama.cpp's own log is routed by the engine. Textual draws
    # on the terminal through fd 2 itself, so fd 2 is left alone.
    route_python_logging()
    try:
        app.run()
    finally:
        session.close()
        if store is not None:
            store.close()
    return app.return_code or 0


def _history(
    config: Config, args: argparse.Namespace
) -> tuple[SessionStore | None, HistoryUnavailableError | None]:
    """The store, or None and why: --no-save, or a database that cannot be opened (the app then
    asks whether to chat without saving; resuming needs it, so that stays an error)."""
    resuming = bool(args.resume or args.continue_session)
    if args.no_save and not resuming:
        return None, None
    try:
        return open_store(config), None
    except HistoryUnavailableError as exc:
        if resuming:
            raise
        return None, exc
