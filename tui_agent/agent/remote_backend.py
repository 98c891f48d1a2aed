"""A model behind an OpenAI-compatible server, as the agent loop sees any model.

The chat wire mode: the conversation goes to ``/v1/chat/completions`` as messages, with the
offered tools; the server renders its own template and parses its model's calls. Streamed
``delta.tool_calls`` come back as the ``<tool_call>`` markup the reply parser reads, so a call
goes through the same checks, guard and permission gate as in-process; a call the server left in
the text is found by the same fallback parsers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from typing import Any

from tui_agent.agent.conversation import ToolFormat
from tui_agent.agent.tool_calls import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from tui_agent.engine.generation import Sampling, TurnStats
from tui_agent.engine.remote import RemoteInfo, RemoteServer
from tui_agent.tools.base import ToolSpec

# Characters per token when the server cannot count for us: low, so compaction comes early
# rather than a request the server refuses for its length.
_CHARS_PER_TOKEN = 3


class RemoteChatBackend:
    tool_format: ToolFormat = "template"
    parallel_calls = True

    def __init__(self, server: RemoteServer, info: RemoteInfo, n_ctx: int) -> None:
        self.server = server
        self.info = info
        # llama-cpp-python's server names a model by its file's path: the file name says enough.
        self.name = f"{info.model.rsplit('/', 1)[-1]} @ {server.where}"
        self.n_ctx = info.n_ctx or n_ctx

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str:
        """The request's messages and tools, as JSON: what is sent is what gets counted."""
        request: dict[str, Any] = {"messages": [_on_the_wire(m) for m in messages]}
        if tools:
            request["tools"] = [t.for_template() for t in tools]
        return json.dumps(request, ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        return len(text) // _CHARS_PER_TOKEN + 1

    def interrupt(self) -> None:
        self.server.interrupt()

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]:
        body: dict[str, Any] = {
            **json.loads(prompt),
            "model": self.info.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed >= 0:
            body["seed"] = sampling.seed
        if force_tools:
            body["tools"] = [t.for_template() for t in force_tools]
            body["tool_choice"] = (
                {"type": "function", "function": {"name": force_tools[0].name}}
                if len(force_tools) == 1
                else "required"
            )
        elif not tools:
            body.pop("tools", None)  # the final answer: tools withheld
        return self._stream(body, should_stop, self.count_tokens(prompt))

    def _stream(
        self, body: dict[str, Any], should_stop: Callable[[], bool], estimated_prompt: int
    ) -> Generator[str, None, TurnStats]:
        # The server's usage figures replace the estimate when it sends them (not all do).
        stats = TurnStats(prompt_tokens=estimated_prompt, finish_reason="length")
        calls: dict[int, dict[str, str]] = {}
        started = time.perf_counter()
        try:
            for chunk in self.server.stream_chat(body, should_stop):
                usage = chunk.get("usage") or {}
                if usage:
                    stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if stats.time_to_first_token == 0.0 and delta:
                        stats.time_to_first_token = time.perf_counter() - started
                    for call in delta.get("tool_calls") or []:
                        _add_call_piece(calls, call)
                    text = delta.get("content")
                    if text:
                        stats.generated_tokens += 1
                        yield text
                    if choice.get("finish_reason"):
                        stats.finish_reason = (
                            "stop"
                            if choice["finish_reason"] in ("stop", "tool_calls")
                            else str(choice["finish_reason"])
                        )
                if usage.get("completion_tokens"):
                    stats.generated_tokens = int(usage["completion_tokens"])
            if should_stop():
                stats.finish_reason = "cancelled"
            elif calls:
                yield "".join(_markup(call) for _, call in sorted(calls.items()))
        finally:
            stats.generation_seconds = time.perf_counter() - started
        return stats


def _on_the_wire(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the OpenAI API takes it: a call's arguments as a JSON string (templates
    take an object), a tool result without a name, no reasoning (servers reject unknown keys)."""
    if message["role"] == "tool":
        return {k: message[k] for k in ("role", "tool_call_id", "content")}
    wired = {k: v for k, v in message.items() if k != "reasoning_content"}
    if message.get("tool_calls"):
        wired["tool_calls"] = [
            {
                **call,
                "function": {
                    "name": call["function"]["name"],
                    "arguments": json.dumps(call["function"]["arguments"], ensure_ascii=False),
                },
            }
            for call in message["tool_calls"]
        ]
    return wired


def _add_call_piece(calls: dict[int, dict[str, str]], piece: dict[str, Any]) -> None:
    """Streamed calls come in pieces: the name, then the arguments' JSON a fragment at a time.
    Some servers (llama-cpp-python's) repeat the whole name in every piece."""
    call = calls.setdefault(int(piece.get("index") or 0), {"name": "", "arguments": ""})
    function = piece.get("function") or {}
    name = function.get("name") or ""
    if name != call["name"]:
        call["name"] += name
    call["arguments"] += function.get("arguments") or ""


def _markup(call: dict[str, str]) -> str:
    try:
        arguments: Any = json.loads(call["arguments"] or "{}")
    except ValueError:
        arguments = call["arguments"]  # the parser reports it to the model as unreadable
    return (
        TOOL_CALL_OPEN
        + json.dumps({"name": call["name"], "arguments": arguments}, ensure_ascii=False)
        + TOOL_CALL_CLOSE
    )
