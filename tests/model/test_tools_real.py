"""End to end on the real demo model: grammar-forced tool calls that go through the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.loop import LoopControl, run_agent_loop
from tui_agent.config import AgentConfig, Config, ModelConfig
from tui_agent.engine import resident
from tui_agent.events import (
    Event,
    PermissionDecision,
    PermissionRequest,
    PermissionResult,
    ToolResult,
)
from tui_agent.tools.setup import build_tools

pytestmark = pytest.mark.model
GREEDY = AgentConfig(
    temperature=0.0, top_k=1, seed=3, max_tokens_per_completion=200, max_iterations=2
)


def test_forced_calls_through_the_gate(demo_gguf: Path, tmp_path: Path) -> None:
    (tmp_path / "fruit.txt").write_text("apples and pears\n")
    config = Config()
    config.tools.workspace_root = str(tmp_path)
    stack = build_tools(config)
    stack.start()
    backend = LlamaBackend(
        resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))
    )
    specs = {s.name: s for s in stack.gate.specs()}
    asked: list[PermissionRequest] = []

    def deny(request: PermissionRequest) -> PermissionDecision:
        asked.append(request)
        return PermissionDecision(False, "once", "not in this test")

    try:
        events: list[Event] = []
        run_agent_loop(
            backend,
            Conversation(),
            "Read the file fruit.txt",
            stack.gate,
            GREEDY,
            events.append,
            LoopControl(ask=deny),
            force_tools=[specs["read_file"]],
        )
        result = next(e for e in events if isinstance(e, ToolResult))
        assert result.name == "read_file" and asked == []
        # The tiny model picks the path; whatever it picked, the real tool answered.
        assert (
            result.success
            or "no such file" in result.output
            or "outside the workspace" in result.output
        ), result.output

        events = []
        run_agent_loop(
            backend,
            Conversation(),
            "Create notes.txt saying hi",
            stack.gate,
            GREEDY,
            events.append,
            LoopControl(ask=deny),
            force_tools=[specs["write_file"]],
        )
        assert len(asked) == 1 and asked[0].tool == "write_file" and asked[0].diff, events
        denied = next(e for e in events if isinstance(e, ToolResult))
        assert denied.denied and not denied.success
        assert any(isinstance(e, PermissionResult) and not e.allowed for e in events)
        written = asked[0].arguments["path"]
        assert not (tmp_path / written).exists(), "a denied write must not happen"
    finally:
        stack.close()


def test_headless_denial_exit_status(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[tools]\nworkspace_root = "{tmp_path}"\n[agent]\ntemperature = 0.0\nmax_iterations = 2\n'
    )
    # An allow rule for one file offers write_file; the forced call to any other path asks,
    # and headless nobody answers.
    allow = ["--allow", "write_file(only-this-one.txt)"]
    result = run_cli(
        "-p", "Write hi to a file", "--force-tool", "write_file", *allow, "--config", str(config)
    )
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "denied" in result.stderr and list(tmp_path.iterdir()) == [config]
    [denial] = [line for line in result.stderr.splitlines() if ": denied: " in line]
    assert denial.endswith(("…", ".")) and not denial.endswith(" Do n"), "cut between words"
    unknown = run_cli("-p", "x", "--force-tool", "nope", "--config", str(config))
    assert unknown.returncode == 2 and "'nope' is not a tool this run can use" in unknown.stderr
    unoffered = run_cli("-p", "x", "--force-tool", "run_shell", "--config", str(config))
    assert unoffered.returncode == 2 and "available: glob, grep, list_dir, read_file" in (
        unoffered.stderr
    )


def test_a_reply_cut_at_the_token_limit_says_so(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 6\n")
    prompt = ["-p", "Write a long story about the sea.", "--no-save", "--config", str(config)]
    result = run_cli(*prompt)
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
    assert (
        "cut at the token limit" in result.stderr and "max_tokens_per_completion" in result.stderr
    )
    record = json.loads(run_cli(*prompt, "--output-format", "json").stdout)
    assert record["reason"] == "length"
