"""Run the real `llamachat serve` app (Starlette on uvicorn, 127.0.0.1, a free port) in a thread,
and read its server-sent events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn

from tests.scripted import ScriptedBackend
from tui_agent.commands.serve_cmd import _bind
from tui_agent.config import Config
from tui_agent.events import ModelLoaded
from tui_agent.serve.app import Guard, build_app
from tui_agent.serve.desk import Desk
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.setup import build_tools


@contextmanager
def serving(
    session: Session,
    token: str | None = None,
    approval_timeout: float = 30.0,
    max_request_bytes: int = 1 << 20,
) -> Iterator[str]:
    """The server's base URL while it runs; it stops (and closes the session) afterwards."""
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = build_app(Desk(session, approval_timeout), Guard(token, max_request_bytes))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


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
