"""Keep long conversations going: summarize old messages when the context fills up.

Everything but the system prompt and the most recent messages is summarized by the model itself
(greedy, bounded length). The cut never separates a tool call from its result. When the old part
is too long for one summary call, it is summarized in chunks, each summary carried into the next.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from tui_agent.agent.backend import ModelBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.config import AgentConfig
from tui_agent.engine.generation import GREEDY, collect
from tui_agent.events import ContextCompacted, EventSink

SUMMARY_INSTRUCTIONS = (
    "Summarize the conversation below so it can continue without it. Keep: the user's goals; "
    "decisions made and their outcomes; file paths, names and identifiers; progress so far and what "
    "remains to do; errors met and how they were solved. Be concise and factual; write at most "
    "{words} words. Reply with the summary only."
)
_SUMMARY_SYSTEM = "You write precise, compact summaries of conversations."
_TOOL_RESULT_CHARS = 1500


def safe_cut(messages: list[Message], keep_recent: int) -> int:
    """Index splitting old (summarized) from kept messages; 0 means nothing to compact.

    The kept part never starts with a tool result: the cut moves back to the assistant message
    that made the call, so a call and its results stay together.
    """
    cut = max(len(messages) - keep_recent, 0)
    while 0 < cut < len(messages) and messages[cut].role == "tool":
        cut -= 1
    return cut


def transcript(messages: list[Message]) -> list[str]:
    """One plain-text entry per message, as the summarizer reads them."""
    lines = []
    for m in messages:
        if m.role == "tool":
            body = (
                m.content
                if len(m.content) <= _TOOL_RESULT_CHARS
                else m.content[:_TOOL_RESULT_CHARS] + " …(cut)"
            )
            lines.append(f"Tool result ({m.name}): {body}")
            continue
        text = m.content + (" [interrupted]" if m.interrupted else "")
        for call in m.tool_calls:
            text += f"\nTool call: {call.name}({json.dumps(call.arguments, ensure_ascii=False)})"
        lines.append(f"{m.role.capitalize()}: {text.strip()}")
    return lines


def summary_budget(n_ctx: int) -> int:
    """Tokens reserved for the summary itself."""
    return max(64, min(512, n_ctx // 6))


def compact_conversation(
    backend: ModelBackend,
    conversation: Conversation,
    config: AgentConfig,
    emit: EventSink,
    should_stop: Callable[[], bool],
    prompt_tokens: Callable[[], int],
    manual: bool = False,
) -> bool:
    """Summarize old messages in place; False when there is nothing to compact (or cancelled)."""
    messages = conversation.messages
    cut = safe_cut(messages, config.compaction_keep_recent)
    if cut == 0:
        return False
    before = len(messages)
    summary = _summarize(backend, conversation.summaries, transcript(messages[:cut]), should_stop)
    if summary is None:
        return False
    conversation.summaries = [summary]
    conversation.messages = messages[cut:]
    emit(
        ContextCompacted(
            messages_before=before,
            messages_after=len(conversation.messages),
            prompt_tokens=prompt_tokens(),
            context_size=backend.n_ctx,
            summary=summary,
            manual=manual,
        )
    )
    return True


def _summarize(
    backend: ModelBackend, earlier: list[str], entries: list[str], should_stop: Callable[[], bool]
) -> str | None:
    budget = summary_budget(backend.n_ctx)
    words = budget * 2 // 3
    instructions = SUMMARY_INSTRUCTIONS.format(words=words)
    summary = "\n".join(earlier)
    # Room for one chunk: the context minus the reply, the instructions and the running summary.
    overhead = backend.count_tokens(_prompt(backend, instructions, "", "")) + 16
    for chunk in _chunks(backend, entries, backend.n_ctx - budget - overhead, summary):
        prompt = _prompt(backend, instructions, summary, chunk)
        sampling = replace(GREEDY, max_tokens=budget)
        text, _ = collect(backend.stream(prompt, sampling, should_stop))
        if should_stop():
            return None
        summary = text.strip() or summary
    # A model that wrote no summary must not make the earlier turns vanish without a trace.
    return summary or _digest(entries, budget * 3)


def _digest(entries: list[str], limit: int) -> str:
    """The user's earlier messages, shortened: the summary when the model wrote none."""
    asked = [e.removeprefix("User: ")[:120] for e in entries if e.startswith("User: ")]
    return ("Earlier the user wrote: " + " | ".join(asked))[:limit] if asked else ""


def _prompt(backend: ModelBackend, instructions: str, summary: str, chunk: str) -> str:
    earlier = f"Summary so far:\n{summary}\n\n" if summary else ""
    body = f"{instructions}\n\n{earlier}<conversation>\n{chunk}\n</conversation>"
    return backend.render(
        [{"role": "system", "content": _SUMMARY_SYSTEM}, {"role": "user", "content": body}], []
    )


def _chunks(backend: ModelBackend, entries: list[str], room: int, summary: str) -> list[str]:
    """Group transcript entries into chunks that fit next to the running summary."""
    room -= backend.count_tokens(summary) if summary else 0
    room = max(room, 32)
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for entry in entries:
        cost = backend.count_tokens(entry)
        if cost > room:  # one huge message: keep its head, it cannot all fit
            entry = entry[: room * 3]
            cost = backend.count_tokens(entry)
        if current and used + cost > room:
            chunks.append("\n".join(current))
            current, used = [], 0
        current.append(entry)
        used += cost
    if current:
        chunks.append("\n".join(current))
    return chunks
