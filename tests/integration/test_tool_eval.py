"""`llamachat eval tools`: the suite on a scripted model that does everything right (all pass,
through the real gate, built-in tools and the eval's own stdio MCP server), the judge's reasons
for each way of failing, and the command on the real demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.scripted import ScriptedBackend
from tui_agent.bench.tool_eval import TASKS, judge, run_suite
from tui_agent.config import Config
from tui_agent.events import Completed, Event, ToolStart


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


GOOD = [
    call("facts__capital", country="Zembla"),
    "The capital of Zembla is Karvolt.",
    call("list_dir", path="."),
    "README.md, lighthouse.txt and notes.txt.",
    call("read_file", path="notes.txt"),
    "The secret word is PELICAN.",
    call("write_file", path="hello.txt", content="hi"),
    "Done: hello.txt says hi.",
    "Paris.",
    call("grep", pattern="lighthouse"),
    call("read_file", path="lighthouse.txt"),
    "The keeper is called Ansel.",
]


def test_a_model_that_calls_right_passes_every_task() -> None:
    backend = ScriptedBackend(list(GOOD))
    results = run_suite(backend, Config())
    assert [(r.task, r.reason) for r in results] == [(t.name, "ok") for t in TASKS]
    assert results[0].calls == ["facts__capital"] and results[5].calls == ["grep", "read_file"]
    offered = {s.name for s in backend.offered[0] or []}
    assert "facts__capital" in offered and "run_shell" not in offered, "headless offering"


TASK = {t.name: t for t in TASKS}


def events(
    *calls: tuple[str, dict[str, object]], answer: str = "ok", reason: str = "done"
) -> list[Event]:
    return [
        *(ToolStart(f"c{i}", name, args) for i, (name, args) in enumerate(calls)),
        Completed(reason, answer),
    ]


@pytest.mark.parametrize(
    ("task", "happened", "reason"),
    [
        ("read_file", events(answer="PELICAN"), "no call"),
        ("read_file", events(("list_dir", {})), "wrong tool: called list_dir, expected read_file"),
        ("read_file", events(("read_file", {"path": "x.txt"})), "wrong args: path 'x.txt'"),
        (
            "read_file",
            events(("read_file", {"path": "notes.txt"}), answer="<tool_call>{"),
            "markup leaked",
        ),
        ("read_file", events(("read_file", {"path": "notes.txt"}), answer=""), "no final answer"),
        (
            "read_file",
            events(("read_file", {"path": "notes.txt"}), reason="repeated_tool_call"),
            "no final answer (repeated_tool_call)",
        ),
        (
            "read_file",
            events(("read_file", {"path": "notes.txt"}), answer="no idea"),
            "answer misses 'PELICAN'",
        ),
        ("no_tool", events(("list_dir", {})), "called a tool (list_dir)"),
        ("two_steps", events(("read_file", {"path": "lighthouse.txt"})), "expected grep"),
        (
            "write_file",
            events(("write_file", {"path": "hello.txt"}), answer="done"),
            "hello.txt was not written",
        ),
    ],
)
def test_each_way_of_failing_has_its_reason(
    task: str, happened: list[Event], reason: str, tmp_path: Path
) -> None:
    assert reason in judge(TASK[task], happened, tmp_path)


@pytest.mark.model
def test_the_command_on_the_demo_model() -> None:
    """The demo model is too small to call tools unforced; its no-tool task must pass."""
    result = run_cli("eval", "tools", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {row["task"]: row for row in report["tasks"]}
    assert set(rows) == {t.name for t in TASKS}
    assert rows["no_tool"]["passed"], rows["no_tool"]
    assert all(row["reason"] for row in report["tasks"]) and report["passed"] >= 1


@pytest.mark.model
def test_json_replies_on_the_demo_model_call_tools_and_leak_no_json() -> None:
    """Held to JSON replies, even the demo model makes calls that parse, of tools that exist;
    the JSON never reaches an answer."""
    result = run_cli("eval", "tools", "--json", "--tool-format", "json", timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tool_format"] == "json"
    offered = {"list_dir", "read_file", "write_file", "edit_file", "glob", "grep", "run_shell"}
    calls = [name for row in report["tasks"] for name in row["calls"]]
    assert calls and all(name in offered or name.startswith("facts__") for name in calls)
    assert not any(row["reason"].startswith("markup leaked") for row in report["tasks"])
