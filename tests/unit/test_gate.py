"""The permission gate end to end with the real in-process built-in MCP server."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_agent.config import Config, load_config
from tui_agent.events import Event, PermissionDecision, PermissionRequest, PermissionResult
from tui_agent.tools.base import CallContext, ToolCall
from tui_agent.tools.setup import ToolStack, build_tools


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("alpha\nbeta\n")
    return root


@pytest.fixture
def config(workspace: Path, tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[tools]\nworkspace_root = "{workspace}"\nmax_output_chars = 200\n[ui]\ntheme = "mine"\n'
    )
    return load_config(path)


@pytest.fixture
def stack(config: Config) -> Iterator[ToolStack]:
    tools = build_tools(config)
    tools.start()
    yield tools
    tools.close()


class Answers:
    """Plays the user: answers permission requests from a script and records them."""

    def __init__(self, *decisions: PermissionDecision) -> None:
        self.decisions = list(decisions)
        self.requests: list[PermissionRequest] = []
        self.events: list[Event] = []

    def ask(self, request: PermissionRequest) -> PermissionDecision:
        self.requests.append(request)
        return self.decisions.pop(0)

    def context(self) -> CallContext:
        return CallContext(self.events.append, lambda: False, self.ask)


def write(path: str, content: str = "x") -> ToolCall:
    return ToolCall("c1", "write_file", {"path": path, "content": content})


def test_read_only_builtins_run_without_asking(stack: ToolStack) -> None:
    user = Answers()
    outcome = stack.gate.execute(ToolCall("c", "read_file", {"path": "notes.txt"}), user.context())
    assert outcome.success and "alpha" in outcome.output and user.requests == []


def test_dangerous_call_never_runs_without_approval(stack: ToolStack, workspace: Path) -> None:
    user = Answers(PermissionDecision(False, "once", "not now"))
    outcome = stack.gate.execute(write("new.txt"), user.context())
    assert outcome.denied and not outcome.success and "not now" in outcome.output
    assert not (workspace / "new.txt").exists(), "a denied call must have no side effect"
    request = user.requests[0]
    assert (
        request.tool == "write_file"
        and request.reason == "it writes a file"
        and "+x" in request.diff
    )
    assert request.rule == "write_file(new.txt)"
    assert any(isinstance(e, PermissionResult) and not e.allowed for e in user.events)
    assert stack.gate.denials == 1


def test_allow_once_asks_again_next_time(stack: ToolStack, workspace: Path) -> None:
    user = Answers(PermissionDecision(True, "once"), PermissionDecision(True, "once"))
    stack.gate.execute(write("a.txt"), user.context())
    stack.gate.execute(write("a.txt"), user.context())
    assert len(user.requests) == 2 and (workspace / "a.txt").exists()


def test_allow_for_session_is_remembered_but_not_saved(stack: ToolStack, config: Config) -> None:
    before = config.path.read_text()  # type: ignore[union-attr]
    user = Answers(PermissionDecision(True, "session"))
    stack.gate.execute(write("a.txt"), user.context())
    stack.gate.execute(write("a.txt", "again"), user.context())
    assert len(user.requests) == 1
    other = Answers(PermissionDecision(False, "once"))
    stack.gate.execute(write("b.txt"), other.context())
    assert len(other.requests) == 1, "the session rule covers a.txt only"
    assert config.path.read_text() == before  # type: ignore[union-attr]


def test_always_allow_persists_the_shown_rule(stack: ToolStack, config: Config) -> None:
    user = Answers(PermissionDecision(True, "always"))
    stack.gate.execute(ToolCall("c", "run_shell", {"command": "echo saved"}), user.context())
    saved = tomllib.loads(config.path.read_text())  # type: ignore[union-attr]
    assert saved["permissions"]["allow"] == [user.requests[0].rule] == ["run_shell(echo saved)"]
    assert saved["ui"]["theme"] == "mine" and saved["tools"]["max_output_chars"] == 200, (
        "other keys kept"
    )
    fresh = build_tools(load_config(config.path))
    fresh.start()
    try:
        again = Answers()
        outcome = fresh.gate.execute(
            ToolCall("c", "run_shell", {"command": "echo saved"}), again.context()
        )
        assert outcome.success and again.requests == []
    finally:
        fresh.close()


def test_deny_rules_win_over_approval(config: Config, workspace: Path) -> None:
    config.permissions.allow = ["write_file"]
    config.permissions.deny = ["write_file(*.env)"]
    stack = build_tools(config)
    stack.start()
    try:
        user = Answers()
        assert stack.gate.execute(write("x.txt"), user.context()).success
        blocked = stack.gate.execute(write(".env"), user.context())
        refusal = next(e for e in user.events if isinstance(e, PermissionResult) and not e.allowed)
        assert blocked.denied and refusal.reason == "blocked by write_file(*.env)"
        assert not (workspace / ".env").exists() and user.requests == []
    finally:
        stack.close()


def test_output_is_capped_and_says_so(stack: ToolStack, workspace: Path) -> None:
    (workspace / "big.txt").write_text("\n".join(f"line {i}" for i in range(500)))
    outcome = stack.gate.execute(ToolCall("c", "grep", {"pattern": "line"}), Answers().context())
    assert len(outcome.output) < 400 and "output cut: 200 of" in outcome.output
    read = stack.gate.execute(ToolCall("c", "read_file", {"path": "big.txt"}), Answers().context())
    assert len(read.output) <= 200 and "ask for start_line=" in read.output, "read_file caps itself"


def test_tool_errors_are_results_not_crashes(stack: ToolStack) -> None:
    outcome = stack.gate.execute(
        ToolCall("c", "read_file", {"path": "../../etc/passwd"}), Answers().context()
    )
    assert not outcome.success and "outside the workspace" in outcome.output


def test_headless_offers_only_tools_that_run_without_asking(config: Config) -> None:
    stack = build_tools(config, allow=["run_shell(git status*)"], deny=["grep"])
    stack.start()
    try:
        everything = {s.name for s in stack.gate.specs()}
        assert {"write_file", "edit_file", "run_shell", "grep"} <= everything
        stack.gate.offer_only_unasked = True
        offered = {s.name for s in stack.gate.specs()}
        assert offered == {"read_file", "list_dir", "glob", "run_shell"}
    finally:
        stack.close()
