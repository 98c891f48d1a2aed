"""The HTTP front end: routes, the guard every request passes, server-sent events.

Starlette routes over uvicorn (both already installed with the MCP SDK). Every request passes
``Guard`` first: a bearer token when one is set, and without one only this machine's own
clients (a web page the user visits must not drive the agent: see ``Guard.check``).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tui_agent.serve.desk import Desk, Reply
from tui_agent.serve.requests import BadRequest, parse_turn_request
from tui_agent.serve.responses import Payload

# How a response that failed maps to an HTTP status when it is not streamed.
_FAILED_STATUS = {
    "config": 400,
    "context": 400,
    "model_load": 503,
    "model_not_found": 503,
    "memory": 503,
}
_LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    token: str | None
    max_request_bytes: int

    def check(self, request: Request) -> None:
        """Raise BadRequest unless the request may reach the agent."""
        if self.token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {self.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise BadRequest(
                    "missing or wrong bearer token (Authorization: Bearer …)", status=401
                )
            return
        # No token: only clients on this machine. A web page can still send requests to
        # 127.0.0.1; its Host (DNS rebinding) or Origin header gives it away.
        host = request.headers.get("host", "")
        if not is_loopback(_host_name(host)):
            raise BadRequest(f"Host {host!r} is not this machine's loopback address", status=403)
        origin = request.headers.get("origin")
        if origin is not None and not is_loopback(_host_name(origin.split("//", 1)[-1])):
            raise BadRequest(f"requests from web pages ({origin}) are refused", status=403)

    async def body(self, request: Request) -> Any:
        """The JSON body, read up to the size limit."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            # Browsers send text/plain and form posts cross-origin without asking first.
            raise BadRequest("send the body as JSON (Content-Type: application/json)", status=415)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_request_bytes:
            raise self._too_large()
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > self.max_request_bytes:
                raise self._too_large()
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from exc

    def _too_large(self) -> BadRequest:
        return BadRequest(
            f"the request body is larger than {self.max_request_bytes:,} bytes"
            " ([serve] max_request_bytes)",
            status=413,
        )


def _host_name(host: str) -> str:
    """The host of a Host header or an origin without its scheme: no port, no brackets."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def build_app(desk: Desk, guard: Guard) -> Starlette:
    async def respond(request: Request) -> Response:
        body = await guard.body(request)
        turn_request = parse_turn_request(body)
        reply = desk.open(turn_request)
        if turn_request.stream:
            return StreamingResponse(
                _sse(reply), media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )
        return await _whole(reply, request)

    async def health(request: Request) -> Response:
        status = {"ready": 200, "loading": 503, "failed": 500}[desk.health.status]
        return JSONResponse(desk.health.as_json(), status_code=status)

    async def models(request: Request) -> Response:
        model = {
            "id": desk.health.model,
            "object": "model",
            "created": started,
            "owned_by": "llamachat",
        }
        return JSONResponse({"object": "list", "data": [model]})

    started = int(time.time())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        desk.start()
        try:
            yield
        finally:
            await asyncio.to_thread(desk.close)

    routes = [
        Route("/v1/responses", _guarded(guard, respond), methods=["POST"]),
        Route("/invocations", _guarded(guard, respond), methods=["POST"]),
        Route("/health", _guarded(guard, health), methods=["GET"]),
        Route("/v1/models", _guarded(guard, models), methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _guarded(
    guard: Guard, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            guard.check(request)
            return await handler(request)
        except BadRequest as exc:
            headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    return endpoint


async def _sse(reply: Reply) -> AsyncIterator[str]:
    async for payload in reply.events():
        if payload is None:
            yield ": waiting\n\n" if reply.response.status == "queued" else ": working\n\n"
        else:
            yield f"event: {payload['type']}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _whole(reply: Reply, request: Request) -> Response:
    """Run the turn to its end and answer with the response object; a client that hangs up
    meanwhile cancels it, as a streaming one does."""

    async def drain() -> None:
        async for _ in reply.events():
            pass

    task = asyncio.ensure_future(drain())
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        if not task.done() and await request.is_disconnected():
            task.cancel()
            return Response(status_code=499)
    task.result()
    response = reply.response.snapshot()
    status = 200
    if response["status"] == "failed":
        status = _FAILED_STATUS.get((response["error"] or {}).get("code", ""), 500)
    return JSONResponse(response, status_code=status)


__all__ = ["Guard", "Payload", "build_app", "is_loopback"]
