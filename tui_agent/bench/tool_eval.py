"""`llamachat eval tools`: a fixed suite of tool tasks that shows how well a model calls tools
through llamachat: the real agent loop, the real tools and permission gate (headless rules: only
tools that run without asking are offered), a real MCP server.

Each task checks what happened, not the model's wording: which tools were called with which
arguments, whether the turn ended with a clean text answer, and (where the answer can only come
from a tool result) whether that answer carries the fact the tool returned.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_agent.agent.backend import ModelBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.loop import LoopControl, run_agent_loop
from tui_agent.config import AgentConfig, Config, McpServerConfig
from tui_agent.events import Completed, Event, ToolStart
from tui_agent.tools.permissions import Rule
from tui_agent.tools.setup import ToolStack, build_tools

FILES = {
    "notes.txt": "Shopping list: bread, milk.\nThe secret word is PELICAN.\n",
    # The name is on a line a search for "lighthouse" does not show: it takes a read.
    "lighthouse.txt": "Notes about the old lighthouse.\nIts keeper is called Ansel.\n",
    "README.md": "# A small folder\n",
}
# Markup that must never be part of an answer.
_LEAKS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response",
    "[TOOL_CALLS]",
    "<|python_tag|>",
    "<think>",
    '{"name"',
    '{"response"',
    '{"tool_call"',
)

ArgumentCheck = Callable[[dict[str, Any]], str]


def _path_is(*names: str) -> ArgumentCheck:
    def check(arguments: dict[str, Any]) -> str:
        path = str(arguments.get("path", ".")).strip().removeprefix("./") or "."
        return "" if path in names else f"path {arguments.get('path')!r}, expected {names[0]!r}"

    return check


def _mentions(key: str, word: str) -> ArgumentCheck:
    def check(arguments: dict[str, Any]) -> str:
        value = str(arguments.get(key, ""))
        return "" if word in value.lower() else f"{key} {value!r} does not name {word!r}"

    return check


@dataclass(frozen=True)
class ToolTask:
    name: str
    prompt: str
    # The tools it must call, in this order (others may come between); empty: it must call none.
    tools: tuple[str, ...] = ()
    # Per tool: what is wrong with a call's arguments ("" when they are right).
    arguments: dict[str, ArgumentCheck] = field(default_factory=dict)
    # The answer must contain one of these (a fact only the tool result holds).
    answer: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    # What the workspace must hold afterwards ("" when it does).
    effect: Callable[[Path], str] | None = None


def _hello_written(root: Path) -> str:
    target = root / "hello.txt"
    if not target.exists():
        return "hello.txt was not written"
    return "" if "hi" in target.read_text().lower() else "hello.txt does not contain hi"


TASKS = (
    ToolTask(
        "mcp_call",
        "Use the facts__capital tool to find the capital of Zembla, then tell me the answer.",
        ("facts__capital",),
        {"facts__capital": _mentions("country", "zembla")},
        ("Karvolt",),
    ),
    ToolTask(
        "list_dir",
        "List the files in the current folder with the list_dir tool and tell me their names.",
        ("list_dir",),
        {"list_dir": _path_is(".")},
        ("notes.txt", "lighthouse.txt", "README.md"),
    ),
    ToolTask(
        "read_file",
        "Read the file notes.txt with the read_file tool. What is the secret word?",
        ("read_file",),
        {"read_file": _path_is("notes.txt")},
        ("PELICAN",),
    ),
    ToolTask(
        "write_file",
        "Create a file named hello.txt whose content is hi, using the write_file tool.",
        ("write_file",),
        {"write_file": _path_is("hello.txt")},
        allow=("write_file(hello.txt)",),
        effect=_hello_written,
    ),
    ToolTask("no_tool", "Without using any tool, greet me in one short sentence."),
    ToolTask(
        "two_steps",
        "Find the file that mentions the lighthouse with the grep tool, then read that file"
        " with read_file and tell me the keeper's name.",
        ("grep", "read_file"),
        {"read_file": _path_is("lighthouse.txt")},
        ("Ansel",),
    ),
)


@dataclass(frozen=True)
class TaskResult:
    task: str
    passed: bool
    reason: str
    seconds: float
    calls: list[str]
    answer: str


def judge(task: ToolTask, events: list[Event], root: Path) -> str:
    """Why the task failed, or "" when it passed."""
    calls = [(e.name, e.arguments) for e in events if isinstance(e, ToolStart)]
    done = next((e for e in reversed(events) if isinstance(e, Completed)), None)
    answer = done.text if done else ""
    if task.tools and not calls:
        return "no call"
    if not task.tools and calls:
        return f"called a tool ({calls[0][0]})"
    names = iter(name for name, _ in calls)
    missing = [tool for tool in task.tools if tool not in names]  # an in-order subsequence
    if missing:
        return f"wrong tool: called {', '.join(n for n, _ in calls)}, expected {missing[0]}"
    for tool, check in task.arguments.items():
        problems = [check(arguments) for name, arguments in calls if name == tool]
        if problems and all(problems):
            return f"wrong args: {problems[-1]}"
    leaked = next((mark for mark in _LEAKS if mark in answer), None)
    if leaked:
        return f"markup leaked: {leaked}"
    if done is None or done.reason != "done" or not answer.strip():
        return f"no final answer ({done.reason if done else 'no end'})"
    if task.answer and not any(w.lower() in answer.lower() for w in task.answer):
        return f"answer misses {task.answer[0]!r}"
    if task.effect is not None:
        return task.effect(root)
    return ""


@contextmanager
def eval_tools(config: Config, root: Path) -> Iterator[ToolStack]:
    """The tools as a headless run has them, in ``root``, with the eval's MCP server."""
    facts = McpServerConfig(
        command=sys.executable, args=["-m", "tui_agent.bench.facts_server"], trusted=True
    )
    local = dataclasses.replace(
        config,
        tools=dataclasses.replace(config.tools, workspace_root=str(root)),
        permissions=dataclasses.replace(config.permissions, allow=[], ask=[], deny=[]),
        mcp_servers={"facts": facts},
    )
    stack = build_tools(local)
    stack.gate.offer_only_unasked = True
    stack.start()
    try:
        yield stack
    finally:
        stack.close()


def run_task(
    task: ToolTask, backend: ModelBackend, stack: ToolStack, agent: AgentConfig, root: Path
) -> TaskResult:
    for path in root.iterdir():
        path.unlink()
    for name, text in FILES.items():
        (root / name).write_text(text)
    stack.gate.policy.allow = [Rule.parse(rule) for rule in task.allow]
    events: list[Event] = []
    started = time.perf_counter()
    run_agent_loop(
        backend, Conversation(), task.prompt, stack.gate, agent, events.append, LoopControl()
    )
    seconds = time.perf_counter() - started
    reason = judge(task, events, root)
    done = next((e for e in reversed(events) if isinstance(e, Completed)), None)
    return TaskResult(
        task.name,
        not reason,
        reason or "ok",
        seconds,
        [e.name for e in events if isinstance(e, ToolStart)],
        done.text if done else "",
    )


def eval_agent_config(agent: AgentConfig) -> AgentConfig:
    """Greedy, so a model's row is the same on every run; bounded, so a looping model ends."""
    return dataclasses.replace(
        agent,
        temperature=0.0,
        top_k=1,
        seed=0,
        max_iterations=6,
        max_tokens_per_completion=min(agent.max_tokens_per_completion, 256),
    )


def run_suite(
    backend: ModelBackend,
    config: Config,
    tasks: tuple[ToolTask, ...] = TASKS,
    progress: Callable[[TaskResult], None] = lambda result: None,
) -> list[TaskResult]:
    agent = eval_agent_config(config.agent)
    results = []
    with tempfile.TemporaryDirectory(prefix="llamachat-eval-") as tmp:
        root = Path(tmp)
        with eval_tools(config, root) as stack:
            for task in tasks:
                result = run_task(task, backend, stack, agent, root)
                progress(result)
                results.append(result)
    return results


def one_line(text: str, limit: int = 60) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
