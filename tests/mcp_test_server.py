"""A test MCP server built with the `mcp` SDK: `python mcp_test_server.py [stdio | http PORT]`."""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

app = MCPServer("llamachat-test-server")
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False)


@app.tool(annotations=READ_ONLY)
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@app.tool(annotations=READ_ONLY)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def fail(message: str) -> str:
    """Always fails with the given message."""
    raise ToolError(message)


@app.tool(annotations=READ_ONLY)
def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return f"slept {seconds}"


@app.tool()
def crash() -> str:
    """Kill the server process mid-call."""
    os._exit(3)


@app.tool(annotations=READ_ONLY)
def big(size: int) -> str:
    """Return a long text."""
    return "x" * size


@app.tool()
def touch(path: str) -> str:
    """Create a file (a side effect tests can check)."""
    with open(path, "w") as handle:
        handle.write("touched")
    return f"created {path}"


if __name__ == "__main__":
    print("test server starting (this line goes to stderr)", file=sys.stderr)
    if "--noise" in sys.argv:  # a badly behaved server: a banner in Latin-1 on stdout
        sys.stdout.buffer.write("démarrage…\n".encode("latin-1", "replace"))
        sys.stdout.flush()
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        app.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        app.run()
