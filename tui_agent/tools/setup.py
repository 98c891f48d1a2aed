"""Build the tool stack from the config: built-ins, the MCP hub, the permission gate."""

from __future__ import annotations

from dataclasses import dataclass

from tui_agent.config import Config, load_config
from tui_agent.errors import ConfigError
from tui_agent.tools.builtin import BuiltinTools, build_builtin_server
from tui_agent.tools.gate import ToolGate
from tui_agent.tools.mcp_hub import McpHub, ServerStatus
from tui_agent.tools.permissions import PermissionPolicy, RuleError
from tui_agent.tools.workspace import Workspace


@dataclass
class ToolStack:
    hub: McpHub
    gate: ToolGate
    workspace: Workspace

    def start(self) -> list[ServerStatus]:
        return self.hub.start()

    def close(self) -> None:
        self.hub.close()


def build_tools(
    config: Config,
    allow: list[str] | None = None,
    deny: list[str] | None = None,
    with_mcp_servers: bool = True,
) -> ToolStack:
    """Tools as the config describes them; ``allow``/``deny`` add rules for this run only."""
    workspace = Workspace.at(config.tools.workspace_root or None)
    servers = config.mcp_servers if with_mcp_servers else {}
    trusted = {"builtin"} | {name for name, server in servers.items() if server.trusted}
    permissions = config.permissions
    try:
        policy = PermissionPolicy.from_lists(
            workspace,
            [*permissions.allow, *(allow or [])],
            list(permissions.ask),
            [*permissions.deny, *(deny or [])],
            trusted,
        )
    except RuleError as exc:
        raise ConfigError(str(exc), "fix the rule in [permissions] or on the command line") from exc
    builtin = BuiltinTools(workspace, config.tools, policy.hides)
    hub = McpHub(servers, build_builtin_server(builtin))
    path = config.path

    def persisted_allow() -> list[str]:
        return list(load_config(path).permissions.allow) if path else []

    gate = ToolGate(hub, policy, config.tools.max_output_chars, builtin, path, persisted_allow)
    return ToolStack(hub, gate, workspace)
