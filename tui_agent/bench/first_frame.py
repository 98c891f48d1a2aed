"""Child process for the start-up benchmark: prints seconds from LLAMACHAT_BENCH_T0 to the first frame.

It starts the app the way `llamachat` does (config, history store, tools, session); the model
starts loading in the background, as it does for a user.
"""

from __future__ import annotations

import asyncio
import os


async def _first_frame(t0: float) -> float:
    from tui_agent.commands.history_cmd import open_store
    from tui_agent.config import load_config
    from tui_agent.session import Session
    from tui_agent.tools.setup import build_tools
    from tui_agent.ui.app import LlamachatApp

    config = load_config()
    store = open_store(config)
    session = Session.from_config(config, None, store, lambda: build_tools(config))
    app = LlamachatApp(session, config)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.first_frame_at is None:
            await pilot.pause(0.005)
        return app.first_frame_at - t0


def main() -> None:
    t0 = float(os.environ["LLAMACHAT_BENCH_T0"])
    print(f"{asyncio.run(_first_frame(t0)):.4f}", flush=True)
    os._exit(0)  # do not wait for the background model load


if __name__ == "__main__":
    main()
