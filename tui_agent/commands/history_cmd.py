"""`llamachat history list|show|search|export|delete|rename`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from tui_agent.commands.models_cmd import print_table
from tui_agent.config import Config, load_config
from tui_agent.engine.state_files import state_files
from tui_agent.errors import LlamachatError
from tui_agent.models.memory import format_bytes
from tui_agent.store.export import export_json, export_markdown
from tui_agent.store.sessions import SessionStore
from tui_agent.store.traces import otlp_json, trace_tree


def open_store(config: Config) -> SessionStore:
    path = Path(config.history.db_path).expanduser() if config.history.db_path else None
    store = SessionStore(path, config.history.retention_days)
    if store.expired:  # their saved model states hold their conversations too
        from tui_agent.engine.state_files import remove_states

        remove_states(set(store.expired))
    for notice in store.notices:
        print(f"[note] {notice}", file=sys.stderr)
    return store


def _store(args: argparse.Namespace) -> SessionStore:
    return open_store(load_config(args.config))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def list_history(args: argparse.Namespace) -> int:
    store = _store(args)
    sessions = store.list_sessions(args.limit, args.offset)
    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in sessions], ensure_ascii=False, indent=2))
    elif not sessions:
        print("no sessions yet")
    else:
        rows = [[s.id, _when(s.updated), str(s.message_count), s.model, s.title] for s in sessions]
        print_table(["ID", "UPDATED", "MSGS", "MODEL", "TITLE"], rows)
    return 0


def show_history(args: argparse.Namespace) -> int:
    store = _store(args)
    session_id = store.resolve_id(args.id)
    if args.trace:
        return _show_trace(store, session_id, args.json)
    print(
        export_json(store, session_id) if args.json else export_markdown(store, session_id), end=""
    )
    # On stderr: the session's text on stdout stays what export writes.
    print(f"[note] {saved_state_note(session_id)}", file=sys.stderr)
    return 0


def _show_trace(store: SessionStore, session_id: str, as_json: bool) -> int:
    turns = store.traces(session_id)
    if as_json:
        print(json.dumps(turns, ensure_ascii=False, indent=2))
    elif not turns:
        print(f"session {session_id} has no traced turns (turns are traced from this version on)")
    else:
        print("\n".join(trace_tree(turns)).rstrip())
    return 0


def saved_state_note(session_id: str) -> str:
    saved = [f for f in state_files() if f.session == session_id]
    if not saved:
        return "no saved model state: resuming reads the session again from its start"
    return (
        "; ".join(
            f"saved model state: {len(f.tokens):,} tokens, {format_bytes(f.file_size)}"
            f" ({Path(str(f.identity.get('model', '?'))).name}, n_ctx {f.identity.get('n_ctx')})"
            for f in saved
        )
        + " — resuming on that model continues from it"
    )


def search_history(args: argparse.Namespace) -> int:
    store = _store(args)
    hits = store.search(args.query, args.limit)
    if args.json:
        print(json.dumps([dataclasses.asdict(h) for h in hits], ensure_ascii=False, indent=2))
    elif not hits:
        print(f"nothing matches {args.query!r}")
    else:
        print_table(
            ["ID", "UPDATED", "TITLE", "MATCH"],
            [[h.session_id, _when(h.updated), h.title, h.snippet.replace("\n", " ")] for h in hits],
        )
    return 0


def export_history(args: argparse.Namespace) -> int:
    store = _store(args)
    session_id = store.resolve_id(args.id)
    if args.format == "otlp-json":
        session = store.get_session(session_id)
        spans = otlp_json(session_id, session.model, store.traces(session_id))
        text = json.dumps(spans, ensure_ascii=False, indent=2) + "\n"
    elif args.format == "json":
        text = export_json(store, session_id)
    else:
        text = export_markdown(store, session_id)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def delete_history(args: argparse.Namespace) -> int:
    store = _store(args)
    session_id = store.resolve_id(args.id)
    session = store.get_session(session_id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise LlamachatError(
                f"not deleting {session_id} without confirmation",
                "pass --yes to delete without asking",
            )
        answer = input(
            f"delete session {session_id} ({session.title!r}, {session.message_count} messages)? [y/N] "
        )
        if not answer.strip().lower().startswith("y"):
            print("kept")
            return 1
    # Here, not at the top: the session module brings the agent, and `history list` must not.
    from tui_agent.session import delete_saved_session

    delete_saved_session(store, session_id)
    print(f"deleted {session_id}")
    return 0


def rename_history(args: argparse.Namespace) -> int:
    store = _store(args)
    session_id = store.resolve_id(args.id)
    store.rename(session_id, args.title)
    print(f"renamed {session_id}")
    return 0
