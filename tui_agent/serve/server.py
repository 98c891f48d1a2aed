"""The listening socket, and the server run on a thread of its own (the bench, the tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tui_agent.errors import ConfigError
from tui_agent.serve.app import Guard, build_app
from tui_agent.serve.desk import Desk
from tui_agent.session import Session


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads: a port in use is said at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            "pick another --port (0 takes any free one), or stop what uses it",
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@contextmanager
def server_thread(
    session: Session,
    token: str | None = None,
    approval_timeout: float = 60.0,
    max_request_bytes: int = 1 << 20,
) -> Iterator[str]:
    """`llamachat serve` for ``session`` on 127.0.0.1 (a free port), on a thread: its base URL
    while it runs; it stops, and closes the session, afterwards."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    app = build_app(Desk(session, approval_timeout), Guard(token, max_request_bytes))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the HTTP server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
