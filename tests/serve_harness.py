"""A scripted session to serve (tui_agent.serve.server.server_thread runs the real server), and
reading its server-sent events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.scripted import ScriptedBackend
from tui_agent.config import Config
from tui_agent.events import ModelLoaded
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.setup import build_tools


def scripted_session(tmp_path: Path, config: Config, backend: ScriptedBackend) -> Session:
    """A session on a scripted model with the real tools, gate and history."""
    stack = build_tools(config)
    stack.start()
    store = SessionStore(Path(config.history.db_path))

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        def load(sink):  # type: ignore[no-untyped-def]
            sink(ModelLoaded(backend.name, "scripted", 0.0, backend.n_ctx, "scripted template"))
            return backend

        return load

    return Session(config, loader, stack.gate, store, tool_stack=stack)


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The data of each server-sent event of a streamed response (read to its end)."""
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


def stream(client: httpx.Client, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", f"{url}/v1/responses", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return events_of(response)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def final(events: list[dict[str, Any]]) -> dict[str, Any]:
    response: dict[str, Any] = events[-1]["response"]
    return response
