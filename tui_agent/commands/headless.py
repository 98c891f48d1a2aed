"""`llamachat -p PROMPT`: one prompt, the reply streamed to stdout, an exit status for scripts.

Output formats: ``text`` (the reply; tools and notes on stderr), ``json`` (one object at the
end) and ``stream-json`` (one JSON object per event, one per line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from tui_agent.agent.conversation import Conversation
from tui_agent.commands.history_cmd import open_store
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
    TurnStatistics,
    event_to_dict,
)
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.spec_cache import tools_key

EXIT_CODES = {
    "done": 0,
    "length": 0,  # an answer, cut at the token limit: said on stderr and in the JSON
    "error": 1,
    "max_iterations": 4,
    "repeated_tool_call": 4,
    "cancelled": 130,
}
EXIT_DENIED = 5
# An error's kind decides the exit status when the run ended in one (README: exit statuses).
EXIT_BY_KIND = {"config": 2, "model_not_found": 3, "model_load": 3, "memory": 3, "remote": 3}
# What to do next, in this mode's terms (the core's hint is general).
NEXT_STEP = {
    "model_not_found": "--model picks another model",
    "model_load": "--model picks another model",
    "memory": "--model picks a smaller model",
    "context": "run without --continue/--resume to start a new session",
}

if TYPE_CHECKING:
    from tui_agent.tools.setup import ToolStack


CUT_AT_THE_LIMIT = (
    "the reply was cut at the token limit ([agent] max_tokens_per_completion); raise it for"
    " longer replies"
)


def clipped(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut between words (a cut word reads as another)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"


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


def session_to_continue(store: SessionStore, args: argparse.Namespace) -> Conversation | None:
    """The conversation named by --continue / --resume, loaded from history."""
    if args.resume:
        return store.load_conversation(store.resolve_id(args.resume))
    if args.continue_session:
        latest = store.latest_session_id()
        if latest is None:
            raise ConfigError(
                "--continue: there is no saved session yet", "start one without --continue"
            )
        return store.load_conversation(latest)
    return None


def run_headless(args: argparse.Namespace) -> int:
    config = apply_overrides(load_config(args.config), args)
    prompt = read_prompt(args)
    resuming = bool(args.resume or args.continue_session)
    store = None if args.no_save and not resuming else open_store(config)
    conversation = session_to_continue(store, args) if store is not None else None

    def tools() -> ToolStack:
        from tui_agent.tools.setup import build_tools  # on the tools' thread (see Session)

        stack = build_tools(config, args.allow, args.deny)
        # Nobody can answer a question: the model is offered only what runs without one.
        stack.gate.offer_only_unasked = True
        return stack

    key = tools_key(config, args.allow, args.deny, only_unasked=True)
    session = Session.from_config(config, args.model, store, tools, conversation, key)
    session.ask_user, session.system_prompt, session.save = False, args.system, not args.no_save
    printer = _printer(args.output_format)
    try:
        session.send(prompt, args.force_tool)
        session.start()
        while True:
            event = session.events.get()
            printer.show(event)
            if isinstance(event, Completed):
                break
    except KeyboardInterrupt:
        session.cancel()
        return 130
    finally:
        session.close()
        printer.finish(session.saved_session_id())
        if store is not None:
            store.close()
    reason = printer.completed.reason if printer.completed else "error"
    if reason in ("done", "length") and printer.denials:
        return EXIT_DENIED
    if reason == "error" and printer.errors:
        return EXIT_BY_KIND.get(printer.errors[0].kind, EXIT_CODES["error"])
    return EXIT_CODES[reason]


class _Printer:
    """Text output: the reply on stdout as it streams; tools, notices and errors on stderr."""

    def __init__(self) -> None:
        self.completed: Completed | None = None
        self.denials = 0
        self.errors: list[Error] = []
        self.usage = {
            "prompt_tokens": 0,
            "cached_tokens": 0,
            "generated_tokens": 0,
            "model_calls": 0,
            # Of the generated tokens, those guessed from the context and checked in a batch.
            "accepted_draft_tokens": 0,
        }
        self.tool_calls: list[dict[str, Any]] = []
        self._ended_with_newline = True

    def show(self, event: Event) -> None:
        self.track(event)
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self._ended_with_newline = event.text.endswith("\n")
        elif isinstance(event, DownloadProgress | ModelLoadProgress):
            print_progress(event)
        elif isinstance(event, ToolStart):
            self._note(f"[tool] {event.name} {json.dumps(event.arguments, ensure_ascii=False)}")
        elif isinstance(event, ToolResult):
            status = "denied" if event.denied else "ok" if event.success else "failed"
            first_line = event.output.strip().splitlines()[0] if event.output.strip() else ""
            self._note(f"[tool] {event.name}: {status}: {clipped(first_line, 160)}")
        elif isinstance(event, Notice):
            self._note(f"[note] {event.message}")
        elif isinstance(event, Error):
            hints = [h for h in (event.hint, NEXT_STEP.get(event.kind, "")) if h]
            self._note("\n  hint: ".join([f"llamachat: error: {event.message}", *hints]))
        elif isinstance(event, Completed):
            if not self._ended_with_newline:
                sys.stdout.write("\n")
                sys.stdout.flush()
            if event.reason == "length":
                self._note(f"[note] {CUT_AT_THE_LIMIT}")

    def track(self, event: Event) -> None:
        if isinstance(event, PermissionResult) and not event.allowed:
            self.denials += 1
        elif isinstance(event, TurnStatistics):
            self.usage["prompt_tokens"] += event.prompt_tokens
            self.usage["cached_tokens"] += event.cached_tokens
            self.usage["generated_tokens"] += event.generated_tokens
            self.usage["accepted_draft_tokens"] += event.accepted_tokens
            self.usage["model_calls"] += 1
        elif isinstance(event, ToolResult):
            self.tool_calls.append(
                {"name": event.name, "success": event.success, "denied": event.denied}
            )
        elif isinstance(event, Error):
            self.errors.append(event)
        elif isinstance(event, Completed):
            self.completed = event

    def finish(self, session_id: str | None) -> None:
        """Called once the prompt is done; the JSON formats print their closing record here."""

    def result(self, session_id: str | None) -> dict[str, Any]:
        reason = self.completed.reason if self.completed else "error"
        return {
            "type": "result",
            "reason": reason,
            "session_id": session_id,
            "usage": self.usage,
            "denials": self.denials,
        }

    def _note(self, line: str) -> None:
        sys.stdout.flush()
        print(line, file=sys.stderr, flush=True)


class _JsonPrinter(_Printer):
    """One JSON object at the end: the reply, why it stopped, usage, tools, the session id."""

    def show(self, event: Event) -> None:
        self.track(event)

    def finish(self, session_id: str | None) -> None:
        record = {
            **self.result(session_id),
            "result": (self.completed or Completed("error")).text,
            "tool_calls": self.tool_calls,
            "errors": [dataclasses.asdict(e) for e in self.errors],
        }
        print(json.dumps(record, ensure_ascii=False))


class _StreamJsonPrinter(_Printer):
    """One JSON object per event and line; a closing "result" line carries usage and session id."""

    def show(self, event: Event) -> None:
        self.track(event)
        print(json.dumps(event_to_dict(event), ensure_ascii=False), flush=True)

    def finish(self, session_id: str | None) -> None:
        print(json.dumps(self.result(session_id), ensure_ascii=False), flush=True)


def _printer(output_format: str) -> _Printer:
    return {"text": _Printer, "json": _JsonPrinter, "stream-json": _StreamJsonPrinter}[
        output_format
    ]()
