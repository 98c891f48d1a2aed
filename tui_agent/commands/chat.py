"""`llamachat`: the chat app on the configured model."""

from __future__ import annotations

import argparse

from tui_agent.commands.headless import session_to_continue
from tui_agent.commands.history_cmd import open_store
from tui_agent.config import load_config
from tui_agent.logfiles import route_python_logging
from tui_agent.tools.setup import ToolStack, build_tools


def run_chat(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(config)
    initial = session_to_continue(store, args)
    from tui_agent.ui.app import LlamachatApp
    from tui_agent.ui.controller import ChatController

    def tools() -> ToolStack:
        return build_tools(config, args.allow, args.deny)

    controller = ChatController.from_config(config, args.model, store, tools, initial)
    app = LlamachatApp(controller, config)
    # Library log records go to a file; llama.cpp's own log is routed by the engine. Textual draws
    # on the terminal through fd 2 itself, so fd 2 is left alone.
    route_python_logging()
    try:
        app.run()
    finally:
        controller.close()
        store.close()
    return 0
