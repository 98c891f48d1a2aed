"""A deny rule on a path holds for every file tool, through the real gate and built-in server.

``deny = ["read_file(.env)", "read_file(secrets/**)"]`` must keep those files' contents (and
names, in listings) away from read_file, grep, glob, list_dir, write_file and edit_file alike,
also through a symlink planted in the workspace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tui_agent.config import load_config
from tui_agent.events import Event, PermissionDecision, PermissionRequest
from tui_agent.tools.base import CallContext, ToolCall, ToolOutcome
from tui_agent.tools.setup import ToolStack, build_tools

SECRET = "hunter2-SECRET"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "secrets").mkdir(parents=True)
    (root / "src").mkdir()
    (root / ".env").write_text(f"TOKEN={SECRET}\n")
    (root / "secrets" / "key.pem").write_text(f"{SECRET}\n")
    (root / "src" / "app.py").write_text("print('hello')\n")
    (root / "src" / "innocent.txt").symlink_to(root / ".env")
    (root / "src" / "keys").symlink_to(root / "secrets")
    return root


@contextmanager
def tools_with(workspace: Path, tmp_path: Path, permissions: str) -> Iterator[ToolStack]:
    """The built-in tools in ``workspace`` under the [permissions] given as TOML lines."""
    path = tmp_path / "config.toml"
    path.write_text(f'[tools]\nworkspace_root = "{workspace}"\n[permissions]\n{permissions}\n')
    tools = build_tools(load_config(path), with_mcp_servers=False)
    tools.start()
    try:
        yield tools
    finally:
        tools.close()


@pytest.fixture
def stack(workspace: Path, tmp_path: Path) -> Iterator[ToolStack]:
    with tools_with(
        workspace,
        tmp_path,
        'deny = ["read_file(.env)", "read_file(secrets/**)"]\n'
        'allow = ["write_file(src/**)", "edit_file(src/**)"]',
    ) as tools:
        yield tools


def run(stack: ToolStack, name: str, **arguments: object) -> ToolOutcome:
    asked: list[PermissionRequest] = []
    events: list[Event] = []

    def ask(request: PermissionRequest) -> PermissionDecision:
        asked.append(request)
        return PermissionDecision(False, "once")

    return stack.gate.execute(
        ToolCall("c", name, dict(arguments)), CallContext(events.append, lambda: False, ask)
    )


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("read_file", {"path": ".env"}),
        ("read_file", {"path": "./src/../.env"}),
        ("read_file", {"path": "src/innocent.txt"}),  # a symlink to .env
        ("read_file", {"path": "secrets/key.pem"}),
        ("read_file", {"path": "src/keys/key.pem"}),  # through a linked directory
        ("grep", {"pattern": ".", "path": ".env"}),
        ("grep", {"pattern": ".", "path": "src/innocent.txt"}),
        ("glob", {"pattern": "*", "path": "secrets/key.pem"}),
        ("list_dir", {"path": "src/keys/key.pem"}),
        ("write_file", {"path": ".env", "content": "x"}),
        ("write_file", {"path": "src/innocent.txt", "content": "x"}),
        ("edit_file", {"path": "src/innocent.txt", "old_string": "TOKEN", "new_string": "X"}),
    ],
)
def test_calls_on_a_denied_path_are_denied(
    stack: ToolStack, workspace: Path, name: str, arguments: dict[str, object]
) -> None:
    outcome = run(stack, name, **arguments)
    assert outcome.denied and SECRET not in outcome.output
    assert (workspace / ".env").read_text() == f"TOKEN={SECRET}\n"


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("grep", {"pattern": "."}),
        ("grep", {"pattern": ".", "file_glob": ".env"}),
        ("glob", {"pattern": "**/*"}),
        ("glob", {"pattern": "src/**/*"}),
        ("list_dir", {}),
        ("list_dir", {"path": "secrets"}),
        ("list_dir", {"path": "src"}),
    ],
)
def test_searches_and_listings_skip_denied_paths_and_say_so(
    stack: ToolStack, name: str, arguments: dict[str, object]
) -> None:
    outcome = run(stack, name, **arguments)
    assert outcome.success and not outcome.denied, outcome.output
    assert SECRET not in outcome.output
    assert ".env" not in outcome.output and "key.pem" not in outcome.output
    assert "innocent.txt" not in outcome.output, "a link to a denied file is left out too"
    assert "left out: [permissions] rules guard them" in outcome.output


def test_searches_never_follow_links_to_denied_paths(stack: ToolStack) -> None:
    assert run(stack, "grep", pattern="SECRET", path="src").output == "no matches for 'SECRET'"
    found = run(stack, "glob", pattern=".env").output
    assert found.startswith("no files match") and "1 path left out" in found


def test_unguarded_files_are_still_found(stack: ToolStack) -> None:
    assert "src/app.py:1:" in run(stack, "grep", pattern="hello").output
    assert "app.py" in run(stack, "list_dir", path="src").output
    assert run(stack, "write_file", path="src/new.py", content="x").success


def test_an_ask_rule_on_a_path_asks_for_reads_and_hides_it_from_searches(
    workspace: Path, tmp_path: Path
) -> None:
    with tools_with(workspace, tmp_path, 'ask = ["grep(.env)"]') as stack:
        assert run(stack, "read_file", path=".env").denied, "asked, and the user said no"
        assert "TOKEN=" not in run(stack, "grep", pattern=".").output


def test_a_write_rule_guards_writes_but_not_reads(workspace: Path, tmp_path: Path) -> None:
    rules = 'deny = ["write_file(src/**)"]\nallow = ["edit_file"]'
    with tools_with(workspace, tmp_path, rules) as stack:
        edit = run(stack, "edit_file", path="src/app.py", old_string="hello", new_string="bye")
        assert edit.denied and "hello" in (workspace / "src" / "app.py").read_text()
        assert "hello" in run(stack, "read_file", path="src/app.py").output


def test_shell_commands_naming_a_guarded_path_ask(workspace: Path, tmp_path: Path) -> None:
    rules = 'deny = ["read_file(.env)"]\nallow = ["run_shell(cat *)"]'
    with tools_with(workspace, tmp_path, rules) as stack:
        assert run(stack, "run_shell", command="cat src/app.py").success
        refused = run(stack, "run_shell", command="cat src/innocent.txt")
        assert refused.denied and SECRET not in refused.output


def test_a_hard_link_to_a_file_outside_is_never_written(
    workspace: Path, tmp_path: Path, stack: ToolStack
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    os.link(outside, workspace / "src" / "linked.txt")
    write = run(stack, "write_file", path="src/linked.txt", content="changed")
    edit = run(stack, "edit_file", path="src/linked.txt", old_string="keep", new_string="lost")
    assert not write.success and "2 hard links" in write.output
    assert not edit.success and "hard links" in edit.output
    assert outside.read_text() == "keep me\n"
