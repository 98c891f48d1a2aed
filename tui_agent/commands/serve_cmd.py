"""`llamachat serve`: the agent over HTTP for editors, scripts and web pages on this machine."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from tui_agent.commands.history_cmd import open_store
from tui_agent.config import Config, ServeConfig, load_config
from tui_agent.errors import ConfigError
from tui_agent.serve.server import bind
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.spec_cache import tools_key

if TYPE_CHECKING:
    from tui_agent.tools.setup import ToolStack


def serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = _settings(config.serve, args)
    token = _token(settings)
    listening = bind(settings.host, settings.port)

    import uvicorn

    from tui_agent.serve.app import Guard, build_app
    from tui_agent.serve.desk import Desk

    store = None if args.no_save else open_store(config)
    session = build_session(config, args.model, store, args.allow, args.deny)
    session.system_prompt = args.system
    desk = Desk(session, settings.approval_timeout_sec)
    app = build_app(desk, Guard(token, settings.max_request_bytes))
    host, port = listening.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    print(
        f"llamachat serve: http://{where}:{port} (model {session.model_label};"
        f" {'bearer token from $' + settings.token_env if token else 'this machine only'})",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    )
    try:
        server.run(sockets=[listening])
    finally:
        if store is not None:
            store.close()
    return 0


def _settings(configured: ServeConfig, args: argparse.Namespace) -> ServeConfig:
    changes = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("token_env", args.token_env),
            ("approval_timeout_sec", args.approval_timeout),
        )
        if value is not None
    }
    return replace(configured, **changes)


def _token(settings: ServeConfig) -> str | None:
    """The bearer token clients must send, or None; a non-loopback address requires one."""
    from tui_agent.serve.app import is_loopback

    if settings.token_env:
        token = os.environ.get(settings.token_env, "")
        if not token.strip():
            raise ConfigError(
                f"--token-env {settings.token_env}: that environment variable is empty or unset",
                f'export {settings.token_env}="$(openssl rand -hex 32)" before starting',
            )
        return token.strip()
    if not is_loopback(settings.host):
        raise ConfigError(
            f"refusing to serve on {settings.host} without a token: anyone who can reach it"
            " could run the agent's tools",
            "keep the default --host 127.0.0.1, or set --token-env VAR with a secret in $VAR",
        )
    return None


def build_session(
    config: Config,
    model_spec: str | None,
    store: SessionStore | None,
    allow: list[str],
    deny: list[str],
) -> Session:
    """The session `serve` runs: the configured model and tools, and a gate that can ask."""

    def tools() -> ToolStack:
        from tui_agent.tools.setup import build_tools  # on the tools' thread (see Session)

        return build_tools(config, allow, deny)

    key = tools_key(config, allow, deny, only_unasked=False)
    session = Session.from_config(config, model_spec, store, tools, None, tools_key=key)
    session.save = store is not None
    return session
