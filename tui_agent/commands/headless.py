"""`llamachat -p PROMPT`: one prompt, the reply streamed to stdout, an exit status for scripts."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tui_agent.agent.setup import start_worker
from tui_agent.agent.worker import SendPrompt
from tui_agent.commands.models_cmd import print_progress
from tui_agent.config import Config, load_config
from tui_agent.errors import ConfigError
from tui_agent.events import (
    Completed,
    DownloadProgress,
    Error,
    Event,
    ModelLoadProgress,
    Notice,
    PermissionResult,
    TextDelta,
    ToolResult,
    ToolStart,
)
from tui_agent.tools.base import ToolSpec
from tui_agent.tools.setup import ToolStack, build_tools

EXIT_CODES = {
    "done": 0,
    "end_of_sequence": 0,
    "error": 1,
    "max_iterations": 4,
    "repeated_tool_call": 4,
    "cancelled": 130,
}
EXIT_DENIED = 5


def read_prompt(args: argparse.Namespace) -> str:
    text = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not text.strip():
        raise ConfigError(
            "the prompt is empty", 'pass text with -p "…", or -p - to read it from stdin'
        )
    return str(text)


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    if args.max_iterations is not None:
        if args.max_iterations < 0:
            raise ConfigError(
                "--max-iterations must be 0 (unlimited) or more", "e.g. --max-iterations 10"
            )
        config.agent = dataclasses.replace(config.agent, max_iterations=args.max_iterations)
    return config


def forced_tools(stack: ToolStack, names: list[str]) -> list[ToolSpec] | None:
    if not names:
        return None
    specs = {s.name: s for s in stack.gate.specs()}
    unknown = [n for n in names if n not in specs]
    if unknown:
        stack.close()
        raise ConfigError(
            f"--force-tool: unknown tool {unknown[0]!r}", f"available: {', '.join(specs)}"
        )
    return [specs[n] for n in names]


def run_headless(args: argparse.Namespace) -> int:
    config = apply_overrides(load_config(args.config), args)
    prompt = read_prompt(args)
    stack = build_tools(config, args.allow, args.deny)
    for status in stack.start():
        if status.state == "failed":
            print(f"[note] MCP server {status.name!r} failed: {status.error}", file=sys.stderr)
    forced = forced_tools(stack, args.force_tool)
    worker = start_worker(config, args.model, stack.gate, args.system, ask_user=False)
    printer = _Printer()
    try:
        worker.submit(SendPrompt(prompt, forced))
        while True:
            event = worker.events.get()
            printer.show(event)
            if isinstance(event, Completed):
                break
    except KeyboardInterrupt:
        worker.cancel()
        return 130
    finally:
        worker.stop()
        stack.close()
    reason = printer.completed.reason if printer.completed else "error"
    if reason in ("done", "end_of_sequence") and printer.denials:
        return EXIT_DENIED
    return EXIT_CODES[reason]


class _Printer:
    """Reply text to stdout as it streams; tools, notices and errors to stderr."""

    def __init__(self) -> None:
        self.completed: Completed | None = None
        self.denials = 0
        self.ended_with_newline = True

    def show(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self.ended_with_newline = event.text.endswith("\n")
        elif isinstance(event, DownloadProgress | ModelLoadProgress):
            print_progress(event)
        elif isinstance(event, ToolStart):
            self._note(f"[tool] {event.name} {event.arguments}")
        elif isinstance(event, ToolResult):
            status = "denied" if event.denied else "ok" if event.success else "failed"
            first_line = event.output.strip().splitlines()[0][:120] if event.output.strip() else ""
            self._note(f"[tool] {event.name}: {status}: {first_line}")
        elif isinstance(event, PermissionResult) and not event.allowed:
            self.denials += 1
        elif isinstance(event, Notice):
            self._note(f"[note] {event.message}")
        elif isinstance(event, Error):
            self._note(
                f"llamachat: error: {event.message}"
                + (f"\n  hint: {event.hint}" if event.hint else "")
            )
        elif isinstance(event, Completed):
            self.completed = event
            if not self.ended_with_newline:
                sys.stdout.write("\n")
            sys.stdout.flush()

    def _note(self, line: str) -> None:
        sys.stdout.flush()
        print(line, file=sys.stderr, flush=True)
