"""`llamachat mcp list|import`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

from tui_agent.commands.models_cmd import print_table
from tui_agent.commands.tools_cmd import UsageError
from tui_agent.config import config_path, load_config, save_settings
from tui_agent.tools.setup import build_tools


def list_servers(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    stack = build_tools(config)
    try:
        # Copies: closing the hub marks every server stopped.
        statuses = [dataclasses.replace(s, tools=list(s.tools)) for s in stack.start()]
    finally:
        stack.close()
    rows = []
    for status in statuses:
        detail = status.error or f"{len(status.tools)} tools: {', '.join(status.tools)}"
        rows.append(
            [status.name, status.transport, status.state, status.protocol_version or "-", detail]
        )
    print_table(["SERVER", "TRANSPORT", "STATUS", "PROTOCOL", "TOOLS"], rows)
    for status in statuses:
        if status.warning:
            print(f"llamachat: {status.problem()}", file=sys.stderr)
    return 0 if all(s.state in ("ready", "disabled") for s in statuses) else 1


def import_servers(args: argparse.Namespace) -> int:
    source = Path(args.file).expanduser()
    servers = read_mcp_json(source)
    target, _ = config_path(args.config)
    existing = load_config(args.config).mcp_servers
    clashes = sorted(set(servers) & set(existing))
    if clashes and not args.force:
        raise UsageError(
            f"already configured: {', '.join(clashes)}", "pass --force to replace them"
        )
    # One write for all of them; an imported server replaces a configured one of that name whole.
    save_settings(
        target, {f"mcp_servers.{name}": table for name, table in servers.items()}, replace=True
    )
    print(f"imported {len(servers)} server(s) into {target}: {', '.join(servers)}")
    print(
        "they are not trusted: their tools ask before running. Set trusted = true per server to change that."
    )
    return 0


def read_mcp_json(path: Path) -> dict[str, dict[str, Any]]:
    """The `mcpServers` of a Claude Desktop or .mcp.json file, as [mcp_servers.NAME] tables."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(
            f"file not found: {path}", "give the path of the JSON file to import"
        ) from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}", "fix the JSON file"
        ) from exc
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict) or not servers:
        raise UsageError(
            f'{path}: no "mcpServers" object', 'expected {"mcpServers": {"name": {"command": ...}}}'
        )
    tables: dict[str, dict[str, Any]] = {}
    for name, entry in servers.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise UsageError(
                f"{path}: server name {name!r} has characters other than letters, digits, - and _",
                "rename it in the JSON file",
            )
        if not isinstance(entry, dict):
            raise UsageError(
                f"{path}: mcpServers.{name} is not an object", "each server is an object"
            )
        table: dict[str, Any] = {}
        if "command" in entry:
            table["command"] = str(entry["command"])
            table["args"] = [str(a) for a in entry.get("args", [])]
        elif "url" in entry:
            table["url"] = str(entry["url"])
            if entry.get("headers"):
                table["headers"] = {str(k): str(v) for k, v in entry["headers"].items()}
        else:
            raise UsageError(
                f"{path}: mcpServers.{name} has neither command nor url", "add one of them"
            )
        if entry.get("env"):
            table["env"] = {str(k): str(v) for k, v in entry["env"].items()}
        if entry.get("cwd"):
            table["cwd"] = str(entry["cwd"])
        if entry.get("disabled") is True:
            table["enabled"] = False
        tables[name] = table
    return tables
