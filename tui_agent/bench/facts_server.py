"""The MCP server `llamachat eval tools` calls: facts no model can know without asking it.

Run as ``python -m tui_agent.bench.facts_server`` (stdio). Built with the ``mcp`` SDK, so the
eval's MCP task goes through a real MCP client and server like any user's.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from tui_agent.logfiles import route_python_logging

CAPITALS = {"zembla": "Karvolt", "ruritania": "Strelsau", "genovia": "Pyrus"}

route_python_logging()  # before MCPServer(), which would install a stderr handler otherwise
app = MCPServer("llamachat-eval-facts")


@app.tool(annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
def capital(country: str) -> str:
    """The capital city of a country."""
    found = CAPITALS.get(country.strip().lower())
    return f"The capital of {country} is {found}." if found else f"{country}: unknown country"


if __name__ == "__main__":
    app.run()
