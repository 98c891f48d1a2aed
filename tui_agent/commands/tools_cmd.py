"""`llamachat tools list|call`: check tools outside a chat, through the same permission gate."""

from __future__ import annotations

import argparse
import json
import sys

from tui_agent.commands.models_cmd import print_table
from tui_agent.config import load_config
from tui_agent.errors import LlamachatError
from tui_agent.events import Event, Notice, PermissionDecision, PermissionRequest, PermissionResult
from tui_agent.tools.base import CallContext, ToolCall, argument_errors
from tui_agent.tools.setup import ToolStack, build_tools

EXIT_DENIED = 5


class UsageError(LlamachatError):
    exit_code = 2


def _started(args: argparse.Namespace) -> ToolStack:
    config = load_config(args.config)
    stack = build_tools(config, getattr(args, "allow", []), getattr(args, "deny", []))
    for status in stack.start():
        if status.problem():
            print(f"llamachat: {status.problem()}", file=sys.stderr)
    return stack


def list_tools(args: argparse.Namespace) -> int:
    stack = _started(args)
    try:
        rows = []
        for spec in stack.gate.specs():
            rows.append(
                [
                    spec.name,
                    spec.server,
                    stack.gate.policy_of(spec),
                    (spec.description.splitlines() or [""])[0][:70],
                ]
            )
        print_table(["TOOL", "SERVER", "PERMISSION", "DESCRIPTION"], rows)
    finally:
        stack.close()
    return 0


def call_tool(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"the arguments are not valid JSON: {exc.msg} (character {exc.pos})",
            'pass a JSON object, e.g. \'{"path": "README.md"}\'',
        ) from exc
    if not isinstance(arguments, dict):
        raise UsageError("the arguments must be a JSON object", 'e.g. \'{"path": "README.md"}\'')
    stack = _started(args)
    try:
        spec = next((s for s in stack.gate.specs() if s.name == args.name), None)
        if spec is None:
            names = ", ".join(s.name for s in stack.gate.specs())
            raise UsageError(f"unknown tool {args.name!r}", f"available: {names}")
        problems = argument_errors(spec.input_schema, arguments)
        if problems:
            raise UsageError(
                f"invalid arguments for {args.name}: {'; '.join(problems)}",
                f"its schema: {json.dumps(spec.input_schema)}",
            )
        denied: list[PermissionResult] = []

        def emit(event: Event) -> None:
            if isinstance(event, PermissionResult) and not event.allowed:
                denied.append(event)
            elif isinstance(event, Notice):
                print(f"[note] {event.message}", file=sys.stderr)

        context = CallContext(emit, lambda: False, ask_on_terminal)
        outcome = stack.gate.execute(ToolCall("cli", args.name, arguments), context)
    finally:
        stack.close()
    print(outcome.output)
    if denied:
        return EXIT_DENIED
    return 0 if outcome.success else 1


def ask_on_terminal(request: PermissionRequest) -> PermissionDecision:
    """Ask on the terminal; without one (a script, CI) the answer is no."""
    if not sys.stdin.isatty():
        return PermissionDecision(False, "headless", "no terminal to ask on; pass --allow RULE")
    print(f"\n{request.tool} wants to run: {request.reason}", file=sys.stderr)
    for line in request.checks:
        print(f"  {line}", file=sys.stderr)
    print(json.dumps(request.arguments, indent=2, ensure_ascii=False), file=sys.stderr)
    if request.diff:
        print(request.diff, file=sys.stderr)
    answer = input(f"allow? [y]es once, [a]lways ({request.rule}), [n]o: ").strip().lower()
    if answer.startswith("a"):
        return PermissionDecision(True, "always")
    if answer.startswith("y"):
        return PermissionDecision(True, "once")
    return PermissionDecision(False, "once", input("reason (optional): ").strip())
