"""The agent's events as an OpenAI Responses API response: its output items and stream events.

One ``ResponseBuilder`` per HTTP response. It turns the core's typed events into the Responses
streaming events (``response.output_text.delta`` and the rest, each with its sequence number)
and keeps the response object that the last event and a non-streaming reply carry.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tui_agent.events import (
    Completed,
    ContextCompacted,
    Error,
    Event,
    Notice,
    PermissionRequest,
    ReasoningDelta,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnStatistics,
)
from tui_agent.serve.requests import TurnRequest

Payload = dict[str, Any]
# Reasons a reply stopped short, as the response's incomplete_details say them.
_INCOMPLETE = {
    "length": "max_output_tokens",
    "max_iterations": "max_iterations",
    "repeated_tool_call": "repeated_tool_call",
    "cancelled": "cancelled",
}


def server_label(tool: str) -> str:
    """The MCP server a tool comes from (tools of servers are named server__tool)."""
    server, _, name = tool.partition("__")
    return server if name else "llamachat"


class ResponseBuilder:
    def __init__(self, response_id: str, model: str, session: str, request: TurnRequest) -> None:
        self.id = response_id
        self.model = model
        self.session = session
        self.request = request
        self.created_at = int(time.time())
        self.status = "in_progress"
        self.output: list[Payload] = []
        self.error: Payload | None = None
        self.incomplete: Payload | None = None
        self.finished = False
        self._sequence = 0
        self._open: Payload | None = None  # the message or reasoning item text streams into
        self._usage = {"input": 0, "cached": 0, "output": 0}

    # --- the response object -------------------------------------------------------------

    def snapshot(self) -> Payload:
        input_tokens, cached, output_tokens = (
            self._usage["input"],
            self._usage["cached"],
            self._usage["output"],
        )
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "model": self.model,
            "output": self.output,
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": cached},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            }
            if self.finished
            else None,
            "error": self.error,
            "incomplete_details": self.incomplete,
            "previous_response_id": self.request.continues_response,
            "instructions": self.request.system,
            "temperature": self.request.temperature,
            "top_p": self.request.top_p,
            "max_output_tokens": self.request.max_output_tokens,
            "parallel_tool_calls": False,
            "tool_choice": self._tool_choice(),
            "store": self.request.store,
            "tools": [],
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "metadata": {},
            # Not in OpenAI's API: the saved session this response belongs to.
            "session": self.session,
        }

    def _tool_choice(self) -> Any:
        if self.request.force_tool is not None:
            return {"type": "function", "name": self.request.force_tool}
        return self.request.tool_choice

    # --- stream events -------------------------------------------------------------------

    def created(self, queued: bool) -> list[Payload]:
        self.status = "queued" if queued else "in_progress"
        events = [self._event("response.created", response=self.snapshot())]
        if queued:  # another session's reply runs: this one waits for the model
            events.append(self._event("response.queued", response=self.snapshot()))
        return events

    def started(self) -> list[Payload]:
        if self.status == "in_progress":
            return []
        self.status = "in_progress"
        return [self._event("response.in_progress", response=self.snapshot())]

    def on(self, event: Event) -> list[Payload]:
        """The stream events for one of the agent's events (most give none)."""
        if isinstance(event, TextDelta):
            return self._text("message", event.text)
        if isinstance(event, ReasoningDelta):
            return self._text("reasoning", event.text)
        if isinstance(event, ToolStart):
            return self._tool_call(event)
        if isinstance(event, ToolResult):
            return self._tool_result(event)
        if isinstance(event, PermissionRequest):
            return self._approval_request(event)
        if isinstance(event, TurnStatistics):
            self._usage["input"] += event.prompt_tokens
            self._usage["cached"] += event.cached_tokens
            self._usage["output"] += event.generated_tokens
        elif isinstance(event, Error):
            self.error = {"code": event.kind, "message": _with_hint(event)}
        elif isinstance(event, Notice):
            return [self._event("llamachat.notice", message=event.message)]
        elif isinstance(event, ContextCompacted):
            return [
                self._event(
                    "llamachat.context_compacted",
                    messages_before=event.messages_before,
                    messages_after=event.messages_after,
                    prompt_tokens=event.prompt_tokens,
                    context_size=event.context_size,
                )
            ]
        elif isinstance(event, Completed):
            return self._completed(event)
        return []

    def failed(self, kind: str, message: str) -> list[Payload]:
        """The response ends without the model: the turn could not start."""
        self.error = {"code": kind, "message": message}
        return self._completed(Completed("error"))

    def _text(self, kind: str, text: str) -> list[Payload]:
        events = []
        if self._open is None or self._open["type"] != kind:
            events += self._close_open()
            events += self._open_item(kind)
        item = self._open
        assert item is not None
        item["content"][0]["text"] += text
        name = (
            "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        )
        events.append(self._event(name, **self._part_place(item), delta=text, **_no_logprobs(kind)))
        return events

    def _open_item(self, kind: str) -> list[Payload]:
        if kind == "message":
            part: Payload = {"type": "output_text", "text": "", "annotations": []}
            item: Payload = {
                "type": "message",
                "id": _new_id("msg"),
                "role": "assistant",
                "status": "in_progress",
                "content": [part],
            }
        else:
            part = {"type": "reasoning_text", "text": ""}
            item = {"type": "reasoning", "id": _new_id("rs"), "summary": [], "content": [part]}
            item["status"] = "in_progress"
        self._open = item
        events = self._add_item({**item, "content": []})
        events.append(
            self._event("response.content_part.added", **self._part_place(item), part=dict(part))
        )
        return events

    def _close_open(self, status: str = "completed") -> list[Payload]:
        item, self._open = self._open, None
        if item is None:
            return []
        item["status"] = status
        part = item["content"][0]
        done = (
            "response.output_text.done"
            if item["type"] == "message"
            else "response.reasoning_text.done"
        )
        return [
            self._event(
                done, **self._part_place(item), text=part["text"], **_no_logprobs(item["type"])
            ),
            self._event("response.content_part.done", **self._part_place(item), part=part),
            self._item_done(item),
        ]

    def _tool_call(self, event: ToolStart) -> list[Payload]:
        arguments = json.dumps(event.arguments, ensure_ascii=False)
        item = {
            "type": "function_call",
            "id": _new_id("fc"),
            "call_id": event.call_id,
            "name": event.name,
            "arguments": arguments,
            "status": "completed",
        }
        events = self._close_open()
        events += self._add_item({**item, "arguments": "", "status": "in_progress"})
        place = {"item_id": item["id"], "output_index": self._index(item)}
        events.append(
            self._event("response.function_call_arguments.delta", **place, delta=arguments)
        )
        events.append(
            self._event(
                "response.function_call_arguments.done",
                **place,
                name=event.name,
                arguments=arguments,
            )
        )
        events.append(self._item_done(item))
        return events

    def _tool_result(self, event: ToolResult) -> list[Payload]:
        item = {
            "type": "function_call_output",
            "id": _new_id("fco"),
            "call_id": event.call_id,
            "output": event.output,
            "status": "completed",
            # Not in OpenAI's item: whether the tool ran and succeeded, or was denied.
            "success": event.success,
            "denied": event.denied,
        }
        return [*self._close_open(), *self._add_item(item), self._item_done(item)]

    def _approval_request(self, event: PermissionRequest) -> list[Payload]:
        """The call waits for the client: the item asks, and this response ends here."""
        item = {
            "type": "mcp_approval_request",
            "id": event.request_id,
            "server_label": server_label(event.tool),
            "name": event.tool,
            "arguments": json.dumps(event.arguments, ensure_ascii=False),
            # Not in OpenAI's item: why it asks, the rule that would allow it, a file change.
            "reason": event.reason,
            "rule": event.rule,
            "diff": event.diff,
        }
        events = [*self._close_open(), *self._add_item(item), self._item_done(item)]
        self.status, self.finished = "completed", True
        return [*events, self._event("response.completed", response=self.snapshot())]

    def _completed(self, event: Completed) -> list[Payload]:
        events = self._close_open("completed" if event.reason == "done" else "incomplete")
        self.finished = True
        if event.reason == "error":
            self.status = "failed"
            self.error = self.error or {"code": "general", "message": "the reply failed"}
            return [*events, self._event("response.failed", response=self.snapshot())]
        if event.reason == "done":
            self.status = "completed"
            return [*events, self._event("response.completed", response=self.snapshot())]
        self.status = "incomplete"
        self.incomplete = {"reason": _INCOMPLETE[event.reason]}
        return [*events, self._event("response.incomplete", response=self.snapshot())]

    # --- helpers -------------------------------------------------------------------------

    def _add_item(self, shown: Payload) -> list[Payload]:
        """Append an item (the real one is kept; ``shown`` is how it is announced)."""
        self.output.append(shown)
        index = len(self.output) - 1
        return [self._event("response.output_item.added", output_index=index, item=shown)]

    def _item_done(self, item: Payload) -> Payload:
        index = self._index(item)
        self.output[index] = item
        return self._event("response.output_item.done", output_index=index, item=item)

    def _index(self, item: Payload) -> int:
        return next(i for i, it in enumerate(self.output) if it["id"] == item["id"])

    def _part_place(self, item: Payload) -> Payload:
        return {"item_id": item["id"], "output_index": self._index(item), "content_index": 0}

    def _event(self, kind: str, **fields: Any) -> Payload:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event


def _no_logprobs(kind: str) -> Payload:
    return {"logprobs": []} if kind == "message" else {}


def _with_hint(event: Error) -> str:
    return f"{event.message} (hint: {event.hint})" if event.hint else event.message


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"
