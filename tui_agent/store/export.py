"""Sessions as Markdown (to read or share) and JSON (to process)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from tui_agent.store.sessions import Entry, SessionStore


def export_json(store: SessionStore, session_id: str) -> str:
    session = store.get_session(session_id)
    payload: dict[str, Any] = {
        "session": dataclasses.asdict(session),
        "entries": [dataclasses.asdict(e) for e in store.entries(session_id)],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)


def export_markdown(store: SessionStore, session_id: str) -> str:
    session = store.get_session(session_id)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(session.created))
    lines = [
        f"# {session.title or 'untitled'}",
        "",
        f"*{when} · {session.model or 'unknown model'} · session {session.id}*",
        "",
    ]
    for entry in store.entries(session_id):
        lines.extend(_entry_markdown(entry))
    return "\n".join(lines).rstrip() + "\n"


def _entry_markdown(entry: Entry) -> list[str]:
    if entry.kind == "compaction":
        data = entry.data
        return [
            f"> **Context compacted**: {data.get('messages_before')} → {data.get('messages_after')} messages. Summary:",
            *[f"> {line}" for line in entry.content.splitlines()],
            "",
        ]
    if entry.kind == "permission":
        verdict = "allowed" if entry.data.get("allowed") else "denied"
        reason = f": {entry.data['reason']}" if entry.data.get("reason") else ""
        return [f"*{entry.data.get('tool')} {verdict} ({entry.data.get('scope')}){reason}*", ""]
    if entry.kind != "message":
        return []
    if entry.role == "tool":
        status = (
            "denied"
            if entry.data.get("denied")
            else "failed"
            if entry.data.get("success") is False
            else "result"
        )
        return [
            f"**Tool {status}** `{entry.data.get('name', '')}`:",
            "",
            "```",
            entry.content,
            "```",
            "",
        ]
    heading = {"user": "**You**", "assistant": "**Assistant**", "system": "**System**"}.get(
        entry.role, entry.role
    )
    out = [f"{heading}{' *(interrupted)*' if entry.interrupted else ''}:", ""]
    if entry.content:
        out += [entry.content, ""]
    for call in entry.data.get("tool_calls", []):
        out += [
            f"Tool call `{call['name']}`:",
            "",
            "```json",
            json.dumps(call.get("arguments", {}), indent=2, ensure_ascii=False),
            "```",
            "",
        ]
    return out
