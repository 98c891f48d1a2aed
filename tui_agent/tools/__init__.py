"""Tools: the MCP hub, built-in tools, permission rules and the one gate every call passes."""
