"""The tool list a run ended with, so the next run's first prompt does not wait for the tools.

Starting the tools (importing the MCP SDK, the built-in server, every configured MCP server)
takes longer than loading a small model: ~0.5 s here before the first token of `llamachat -p`.
The list the tools offered is kept under a key made of everything that shapes it (the tools,
permissions and MCP server config, the rules given on the command line, the workspace,
llamachat's version); with the same key the first prompt is rendered from that list while the
tools start. Calls always wait for the real tools and go through the real permission gate: the
list only says what the model is offered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs

from tui_agent.config import Config
from tui_agent.tools.base import ToolSpec


def tools_key(config: Config, allow: list[str], deny: list[str], only_unasked: bool) -> str:
    from tui_agent import __version__

    parts: dict[str, Any] = {
        "version": __version__,
        "tools": dataclasses.asdict(config.tools),
        "permissions": dataclasses.asdict(config.permissions),
        "mcp_servers": {k: dataclasses.asdict(v) for k, v in config.mcp_servers.items()},
        "allow": allow,
        "deny": deny,
        "only_unasked": only_unasked,
        # The workspace defaults to the folder llamachat starts in.
        "cwd": "" if config.tools.workspace_root else os.getcwd(),
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _path(key: str) -> Path:
    return platformdirs.user_cache_path("llamachat") / "tool-lists" / f"{key}.json"


def load_specs(key: str) -> list[ToolSpec] | None:
    try:
        items = json.loads(_path(key).read_text(encoding="utf-8"))
        return [ToolSpec(**item) for item in items]
    except (OSError, ValueError, TypeError):
        return None  # none yet, or unreadable: the prompt waits for the tools


def save_specs(key: str, specs: list[ToolSpec]) -> None:
    path = _path(key)
    text = json.dumps([dataclasses.asdict(s) for s in specs])
    with contextlib.suppress(OSError):  # a cache: not saving it only costs the next run time
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
