"""`llamachat tools`, `mcp` and headless permission flags, through the real CLI."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli

SERVER = str(Path(__file__).parent.parent / "mcp_test_server.py")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the workspace\n")
    return root


@pytest.fixture
def config(tmp_path: Path, workspace: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[tools]\nworkspace_root = "{workspace}"\n')
    return path


def test_tools_list(config: Path) -> None:
    result = run_cli("tools", "list", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines()[1:]}
    assert (
        lines["read_file"] == "allow"
        and lines["write_file"] == "ask"
        and lines["run_shell"] == "ask"
    )


def test_tools_call_read_and_gate(config: Path, workspace: Path) -> None:
    read = run_cli("tools", "call", "read_file", '{"path": "hello.txt"}', "--config", str(config))
    assert read.returncode == 0 and "hello from the workspace" in read.stdout
    denied = run_cli(
        "tools",
        "call",
        "write_file",
        '{"path": "new.txt", "content": "x"}',
        "--config",
        str(config),
    )
    assert denied.returncode == 5 and "did not allow" in denied.stdout
    assert not (workspace / "new.txt").exists()
    allowed = run_cli(
        "tools",
        "call",
        "write_file",
        '{"path": "new.txt", "content": "x"}',
        "--config",
        str(config),
        "--allow",
        "write_file(new.txt)",
    )
    assert allowed.returncode == 0 and (workspace / "new.txt").read_text() == "x"
    blocked = run_cli(
        "tools",
        "call",
        "read_file",
        '{"path": "hello.txt"}',
        "--config",
        str(config),
        "--deny",
        "read_file",
    )
    assert blocked.returncode == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["read_file", "{bad"], "not valid JSON"),
        (["read_file", "[1]"], "must be a JSON object"),
        (["no_such_tool", "{}"], "unknown tool 'no_such_tool'"),
        (["read_file", '{"path": 3}'], "argument 'path' should be string"),
        (["read_file", "{}"], "missing required argument 'path'"),
    ],
)
def test_tools_call_bad_input(config: Path, args: list[str], message: str) -> None:
    result = run_cli("tools", "call", *args, "--config", str(config))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_tools_call_bad_rule(config: Path) -> None:
    result = run_cli(
        "tools", "call", "read_file", "{}", "--config", str(config), "--allow", "run shell"
    )
    assert result.returncode == 2 and "invalid permission rule" in result.stderr


def test_mcp_list_shows_status_and_failures(tmp_path: Path, config: Path) -> None:
    config.write_text(
        config.read_text()
        + f"""
[mcp_servers.test]
command = "{sys.executable}"
args = ["{SERVER}"]
[mcp_servers.broken]
command = "no-such-command-llamachat"
"""
    )
    result = run_cli("mcp", "list", "--config", str(config))
    assert result.returncode == 1, "a failed server makes the listing exit non-zero"
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "ready" in rows["test"] and "test__echo" in rows["test"] and "stdio" in rows["test"]
    assert "failed" in rows["broken"] and "command not found" in rows["broken"]
    assert "ready" in rows["builtin"]


def test_mcp_import(tmp_path: Path, config: Path) -> None:
    source = tmp_path / "claude_desktop_config.json"
    source.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
                    "remote": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "1"}},
                }
            }
        )
    )
    result = run_cli("mcp", "import", str(source), "--config", str(config))
    assert result.returncode == 0, result.stderr
    saved = tomllib.loads(config.read_text())
    assert saved["mcp_servers"]["time"] == {
        "command": "uvx",
        "args": ["mcp-server-time"],
        "env": {"TZ": "UTC"},
    }
    assert saved["mcp_servers"]["remote"]["url"] == "http://127.0.0.1:9/mcp"
    assert "workspace_root" in saved["tools"], "the user's other keys are kept"
    again = run_cli("mcp", "import", str(source), "--config", str(config))
    assert again.returncode == 2 and "already configured" in again.stderr
    source.write_text(json.dumps({"mcpServers": {"time": {"url": "http://127.0.0.1:9/other"}}}))
    assert run_cli("mcp", "import", str(source), "--config", str(config), "--force").returncode == 0
    replaced = tomllib.loads(config.read_text())["mcp_servers"]
    assert replaced["time"] == {"url": "http://127.0.0.1:9/other"}, (
        "--force replaces the table whole"
    )
    assert replaced["remote"]["url"] == "http://127.0.0.1:9/mcp"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"servers": {}}', 'no "mcpServers"'),
        ('{"mcpServers": {"x": {"args": []}}}', "neither command nor url"),
        ('{"mcpServers": {"a.b": {"command": "x"}}}', "server name 'a.b'"),
    ],
)
def test_mcp_import_bad_files(tmp_path: Path, config: Path, content: str, message: str) -> None:
    source = tmp_path / "mcp.json"
    source.write_text(content)
    before = config.read_text()
    result = run_cli("mcp", "import", str(source), "--config", str(config))
    assert result.returncode == 2 and message in result.stderr
    assert config.read_text() == before
    missing = run_cli("mcp", "import", str(tmp_path / "none.json"), "--config", str(config))
    assert missing.returncode == 2 and "file not found" in missing.stderr
