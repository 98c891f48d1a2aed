"""One asyncio loop thread that owns every MCP client.

Each server gets a long-lived task that enters its ``Client`` context, lists the tools, and waits
until the hub closes; the SDK wants a client entered and exited in the same task. The agent worker
calls tools synchronously through ``McpHub.call`` (``run_coroutine_threadsafe``). A server whose
connection dies is restarted on its next use, and the user is told.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_agent.config import McpServerConfig
from tui_agent.logfiles import log_dir, rotated
from tui_agent.tools.base import ToolOutcome, ToolSpec

BUILTIN = "builtin"
SEPARATOR = "__"
_CALL_POLL_SECONDS = 0.05


@dataclass
class ServerStatus:
    name: str
    state: str  # starting | ready | failed | crashed | disabled | stopped
    transport: str
    protocol_version: str = ""
    tools: list[str] = field(default_factory=list)
    error: str = ""
    log_path: str = ""
    warning: str = ""  # a server that runs but misbehaves (output on stdout that is not JSON-RPC)

    def problem(self) -> str:
        """The line to show the user about this server, or "" when all is well."""
        if self.state == "failed":
            return f"MCP server {self.name!r} failed: {self.error}"
        return f"MCP server {self.name!r}: {self.warning}" if self.warning else ""


@dataclass
class _Connection:
    name: str
    config: McpServerConfig | None  # None for the in-process built-in server
    target: Any = None  # the in-process server object, for the built-ins
    status: ServerStatus = field(default_factory=lambda: ServerStatus("", "starting", ""))
    client: Any = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event | None = None
    ready: asyncio.Event | None = None
    specs: list[ToolSpec] = field(default_factory=list)
    remote: dict[str, str] = field(default_factory=dict)  # our tool name -> the server's
    # Lines on the server's stdout that were not JSON-RPC: how many, and the first one.
    noise: int = 0
    first_noise: str = ""

    def noise_text(self) -> str:
        if not self.noise:
            return ""
        what = "not UTF-8" if "\ufffd" in self.first_noise else "not JSON-RPC"
        return (
            f"it wrote {self.noise} line(s) on stdout that are {what}, which were ignored"
            f" (the first: {self.first_noise[:80]!r}); a stdio server must keep stdout for"
            " JSON-RPC and log to stderr"
        )


class McpHub:
    def __init__(
        self,
        servers: dict[str, McpServerConfig],
        builtin_server: Any = None,
        log_dir: Path | None = None,
    ) -> None:
        self._log_dir = log_dir
        self._connections: dict[str, _Connection] = {}
        if builtin_server is not None:
            self._connections[BUILTIN] = _Connection(BUILTIN, None, builtin_server)
        for name, config in servers.items():
            self._connections[name] = _Connection(name, config)
        for connection in self._connections.values():
            connection.status = ServerStatus(
                connection.name, "starting", _transport_name(connection)
            )
            if connection.config is not None and not connection.config.enabled:
                connection.status.state = "disabled"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="llamachat-mcp", daemon=True
        )
        self._started = False
        self.notices: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> list[ServerStatus]:
        """Start every enabled server and wait until each is ready or has failed."""
        if not self._started:
            self._thread.start()
            self._started = True
        self._run(self._start_all(), None)
        return self.statuses()

    def close(self) -> None:
        if not self._started:
            return
        with contextlib.suppress(Exception):
            self._run(self._stop_all(), 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._started = False

    def statuses(self) -> list[ServerStatus]:
        return [c.status for c in self._connections.values()]

    def specs(self) -> list[ToolSpec]:
        """Every tool, sorted by name so the prompt's tool list never reorders.

        A crashed server keeps its tools listed (it restarts on the next call), so the tool list,
        and with it the start of the prompt, stays the same.
        """
        found = [
            s
            for c in self._connections.values()
            if c.status.state in ("ready", "crashed")
            for s in c.specs
        ]
        return sorted(found, key=lambda s: s.name)

    def trusted(self, server: str) -> bool:
        connection = self._connections.get(server)
        return connection is not None and (connection.config is None or connection.config.trusted)

    # --- calls (from the agent worker thread) ---------------------------------------------

    def call(
        self, name: str, arguments: dict[str, Any], cancelled: Callable[[], bool] = lambda: False
    ) -> ToolOutcome:
        connection = self._owner(name)
        if connection is None:
            return ToolOutcome(False, f"error: no server provides the tool {name!r}")
        future = asyncio.run_coroutine_threadsafe(
            self._call(connection, name, arguments), self._loop
        )
        while True:
            try:
                return future.result(timeout=_CALL_POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                if cancelled():
                    future.cancel()
                    return ToolOutcome(False, "cancelled by the user while it ran")

    def _owner(self, name: str) -> _Connection | None:
        for connection in self._connections.values():
            if name in connection.remote:
                return connection
        return None

    def _run(self, coro: Any, timeout: float | None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- on the hub loop ------------------------------------------------------------------

    async def _start_all(self) -> None:
        pending = [
            c
            for c in self._connections.values()
            if c.status.state in ("starting", "crashed", "failed")
        ]
        await asyncio.gather(*(self._start(c) for c in pending))

    async def _start(self, connection: _Connection) -> None:
        connection.stop, connection.ready = asyncio.Event(), asyncio.Event()
        connection.status.state, connection.status.error = "starting", ""
        connection.task = asyncio.create_task(self._serve(connection))
        timeout = connection.config.startup_timeout_sec if connection.config else 30.0
        try:
            await asyncio.wait_for(connection.ready.wait(), timeout)
        except TimeoutError:
            connection.status.state = "failed"
            connection.status.error = f"did not start within {timeout:g} s (startup_timeout_sec)"
            if connection.noise:
                connection.status.error += f"; {connection.noise_text()}"
            connection.stop.set()
            connection.task.cancel()

    async def _serve(self, connection: _Connection) -> None:
        """The one task that owns this server's client: enter, list tools, wait, exit."""
        from mcp import Client

        assert connection.stop is not None and connection.ready is not None

        async def on_message(message: Any) -> None:
            # A line on stdout that is not JSON-RPC reaches the session as an exception; the SDK
            # only logs it. Count it so the user learns why a server misbehaves.
            if isinstance(message, Exception):
                if not connection.noise:
                    connection.first_noise = _offending_line(message)
                connection.noise += 1

        connection.noise, connection.first_noise = 0, ""
        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = self._transport(connection, stack)
                client = await stack.enter_async_context(
                    Client(transport, message_handler=on_message)
                )
                connection.client = client
                connection.status.protocol_version = str(client.protocol_version)
                await self._list_tools(connection)
                connection.status.state = "ready"
                connection.status.warning = connection.noise_text()
                connection.ready.set()
                await connection.stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the SDK raises exception groups from its task groups
            connection.status.state = "failed"
            connection.status.error = _describe_failure(connection, exc)
        finally:
            connection.client = None
            if connection.status.state == "ready":
                connection.status.state = "stopped"
            connection.ready.set()

    def _transport(self, connection: _Connection, stack: contextlib.AsyncExitStack) -> Any:
        if connection.config is None:
            return connection.target
        config = connection.config
        if config.url:
            return _http_transport(config)
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        if (
            shutil.which(config.command, path=_search_path(config)) is None
            and not Path(config.command).is_file()
        ):
            raise FileNotFoundError(f"command not found: {config.command}")
        log = stack.enter_context(self._log_file(connection))
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env={**os.environ, **config.env} if config.env else None,
            cwd=config.cwd or None,
            # "strict" ends the SDK's stdout reader on the first bad byte, silently: the server
            # then looks like it never started. Replaced, the line is reported as noise.
            encoding_error_handler="replace",
        )
        return stdio_client(params, errlog=log)

    @contextlib.contextmanager
    def _log_file(self, connection: _Connection) -> Any:
        """A server's stderr goes to its own log file, never onto the screen."""
        directory = self._log_dir or log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = rotated(directory / f"mcp-{connection.name}.log")
        connection.status.log_path = str(path)
        with path.open("a", encoding="utf-8") as log:
            yield log

    async def _list_tools(self, connection: _Connection) -> None:
        tools: list[Any] = []
        cursor = None
        while True:
            listing = await connection.client.list_tools(cursor=cursor)
            tools.extend(listing.tools)
            cursor = listing.next_cursor
            if not cursor:
                break
        config = connection.config
        connection.specs, connection.remote = [], {}
        for tool in tools:
            if config is not None and (
                (config.enabled_tools and tool.name not in config.enabled_tools)
                or tool.name in config.disabled_tools
            ):
                continue
            name = (
                tool.name
                if connection.config is None
                else f"{connection.name}{SEPARATOR}{tool.name}"
            )
            hints = tool.annotations
            connection.specs.append(
                ToolSpec(
                    name=name,
                    description=tool.description or tool.title or tool.name,
                    input_schema=dict(tool.input_schema or {"type": "object", "properties": {}}),
                    read_only=bool(hints and hints.read_only_hint),
                    # MCP's default for a missing destructive hint is "destructive".
                    destructive=not (hints and hints.destructive_hint is False),
                    server=connection.name,
                )
            )
            connection.remote[name] = tool.name
        connection.status.tools = sorted(connection.remote)

    async def _call(
        self, connection: _Connection, name: str, arguments: dict[str, Any]
    ) -> ToolOutcome:
        from mcp import MCPError

        if connection.status.state != "ready" or connection.client is None:
            self.notices.append(f"MCP server {connection.name!r} was down; restarting it")
            await self._restart(connection)
            if connection.status.state != "ready":
                return ToolOutcome(
                    False,
                    f"error: MCP server {connection.name!r} is unavailable: {connection.status.error}",
                )
        timeout = connection.config.tool_timeout_sec if connection.config else None
        try:
            result = await connection.client.call_tool(
                connection.remote[name], arguments, read_timeout_seconds=timeout
            )
        except MCPError as exc:
            if "timed out" in str(exc):
                return ToolOutcome(
                    False, f"error: {name} timed out after {timeout:g} s (tool_timeout_sec)"
                )
            connection.status.state = "crashed"
            connection.status.error = str(exc)
            self.notices.append(
                f"MCP server {connection.name!r} stopped during {name} ({exc}); it restarts on next use"
            )
            return ToolOutcome(
                False, f"error: the MCP server {connection.name!r} stopped during the call ({exc})"
            )
        except Exception as exc:  # transport failures surface as plain exceptions
            connection.status.state = "crashed"
            connection.status.error = f"{type(exc).__name__}: {exc}"
            self.notices.append(
                f"MCP server {connection.name!r} failed during {name}; it restarts on next use"
            )
            return ToolOutcome(
                False, f"error: the MCP server {connection.name!r} failed during the call: {exc}"
            )
        return ToolOutcome(not result.is_error, result_text(result))

    async def _restart(self, connection: _Connection) -> None:
        await self._stop(connection)
        await self._start(connection)

    async def _stop(self, connection: _Connection) -> None:
        if connection.stop is not None:
            connection.stop.set()
        if connection.task is not None and not connection.task.done():
            try:
                await asyncio.wait_for(asyncio.shield(connection.task), 5)
            except (TimeoutError, Exception):
                connection.task.cancel()
                with contextlib.suppress(BaseException):
                    await connection.task

    async def _stop_all(self) -> None:
        await asyncio.gather(*(self._stop(c) for c in self._connections.values()))
        for connection in self._connections.values():
            if connection.status.state in ("ready", "starting"):
                connection.status.state = "stopped"


def result_text(result: Any) -> str:
    """The text of a CallToolResult; non-text content is named, structured content shown as JSON."""
    parts: list[str] = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {getattr(item, 'mime_type', '')}]")
        elif kind == "resource":
            resource = item.resource
            parts.append(getattr(resource, "text", None) or f"[resource: {resource.uri}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _http_transport(config: McpServerConfig) -> Any:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = dict(config.headers)
    if config.bearer_token_env_var:
        token = os.environ.get(config.bearer_token_env_var)
        if not token:
            raise ValueError(
                f"environment variable {config.bearer_token_env_var} (bearer_token_env_var) is not set"
            )
        headers["Authorization"] = f"Bearer {token}"
    return streamable_http_client(config.url, http_client=create_mcp_http_client(headers=headers))


def _search_path(config: McpServerConfig) -> str | None:
    return config.env.get("PATH") or os.environ.get("PATH")


def _transport_name(connection: _Connection) -> str:
    if connection.config is None:
        return "in-process"
    return "http" if connection.config.url else "stdio"


def _describe_failure(connection: _Connection, exc: BaseException) -> str:
    leaves = _leaf_exceptions(exc)
    first = leaves[0] if leaves else exc
    if isinstance(first, FileNotFoundError):
        return f"{first.strerror or first}; check `command` in [mcp_servers.{connection.name}]".replace(
            "[Errno 2] ", ""
        )
    text = f"{type(first).__name__}: {first}"
    if connection.noise:
        text += f"; {connection.noise_text()}"
    if connection.status.log_path:
        text += f" (server log: {connection.status.log_path})"
    return text


def _offending_line(exc: Exception) -> str:
    """The stdout line a parse error is about (pydantic keeps it as the error's input)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            return str(errors()[0]["input"])
    return str(exc)


def _leaf_exceptions(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaf_exceptions(inner)]
    return [exc]
