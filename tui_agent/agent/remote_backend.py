"""A model behind an OpenAI-compatible server, as the agent loop sees any model.

Two wire modes. *completions*: llamachat renders the prompt with the model's chat template (the
server's, from llama-server's ``/props``, or the config's) and streams ``/v1/completions``; calls
are read by llamachat's own parsers and held by its grammars, exactly as in-process, and the
server reuses its cache for the prompt's unchanged start. *chat*: the conversation goes to
``/v1/chat/completions`` as messages with the offered tools; the server renders its own template
and parses its model's calls. Streamed ``delta.tool_calls`` come back as the ``<tool_call>``
markup the reply parser reads, so a call goes through the same checks, guard and permission gate;
a call the server left in the text is found by the same fallback parsers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from tui_agent.agent.backend import TemplateBackend
from tui_agent.agent.conversation import ToolFormat
from tui_agent.agent.tool_calls import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from tui_agent.config import ModelConfig
from tui_agent.engine.chat_template import ChatRenderer
from tui_agent.engine.generation import Sampling, TurnStats
from tui_agent.engine.remote import RemoteError, RemoteInfo, RemoteServer
from tui_agent.engine.server_slots import ServerSlotStates
from tui_agent.engine.template_source import template_from_config
from tui_agent.tools.base import ToolSpec

# Characters per token when the server cannot count for us: low, so compaction comes early
# rather than a request the server refuses for its length. The server's usage figures correct it.
_CHARS_PER_TOKEN = 3.0


def remote_backend(
    server: RemoteServer, info: RemoteInfo, settings: ModelConfig
) -> RemoteChatBackend | RemoteCompletionsBackend:
    """The backend for a checked server in the wire mode ``[model] api`` asks for: "auto" renders
    here when a template is known (the config's, or the server's), else lets the server do it."""
    template = template_from_config(settings.chat_template) or info.template
    api = settings.api
    if api == "auto":
        api = "completions" if template is not None else "chat"
    if api == "chat":
        return RemoteChatBackend(server, info, settings.n_ctx)
    if template is None:
        raise RemoteError(
            f"{server.where} does not say which chat template {info.model} uses, which the"
            " completions API needs",
            "set [model] chat_template to the model's template (its .gguf or"
            ' tokenizer_config.json will do), or [model] api = "chat"',
        )
    renderer = ChatRenderer(
        template.template, template.bos_token, template.eos_token, adds_bos=info.adds_bos
    )
    backend = RemoteCompletionsBackend(server, info, renderer, settings.n_ctx, settings.tool_format)
    backend.wire = f"completions API, template: {template.origin}"
    return backend


def _display_name(server: RemoteServer, info: RemoteInfo) -> str:
    # llama-cpp-python's server names a model by its file's path: the file name says enough.
    return f"{info.model.rsplit('/', 1)[-1]} @ {server.where}"


def _sampling_body(sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
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
    return body


class RemoteCompletionsBackend(TemplateBackend):
    """The prompt rendered here, completed by the server: tools work as they do in-process."""

    def __init__(
        self,
        server: RemoteServer,
        info: RemoteInfo,
        renderer: ChatRenderer,
        n_ctx: int,
        tool_format: str,
    ) -> None:
        self.server = server
        self.info = info
        self.wire = "completions API"
        self._counted: tuple[str, int] = ("", 0)
        # The session whose prompts run now, and its states in the server's slot files.
        self.session = ""
        self.slots = ServerSlotStates(server, info)
        super().__init__(_display_name(server, info), info.n_ctx or n_ctx, renderer, tool_format)

    def keep_state(self) -> None:
        self.slots.save(self.session)

    def finish_saving(self) -> None:
        """Nothing to wait for: the server wrote its file before it answered."""

    def state_notices(self) -> list[str]:
        return self.slots.take_notices()

    def count_tokens(self, text: str) -> int:
        # The loop counts a prompt to fit it, then completes it: one request, not two.
        if self._counted[0] == text:
            return self._counted[1]
        counted = self.server.count_tokens(self.info, text) if self.info.tokenizer else None
        count = counted if counted is not None else int(len(text) / _CHARS_PER_TOKEN) + 1
        self._counted = (text, count)
        return count

    def interrupt(self) -> None:
        self.server.interrupt()

    def complete(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        grammar: str | None,
    ) -> Generator[str, None, TurnStats]:
        body: dict[str, Any] = {
            "model": self.info.model,
            "prompt": prompt,
            **_sampling_body(sampling),
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "repeat_penalty": sampling.repeat_penalty,
            # llama-server keeps a slot's cache for the prompt's unchanged start (its default
            # too; said, for servers that follow the flag).
            "cache_prompt": True,
        }
        if grammar:
            body["grammar"] = grammar
        started = time.perf_counter()  # as in-process, the first token's time counts a restore
        restored = self.slots.restore(self.session)
        chunks = self.server.stream("completions", body, should_stop)
        stats = yield from _streamed(
            chunks, should_stop, self.count_tokens(prompt), _completion_text, started
        )
        stats.restored_tokens, stats.restore_seconds = restored
        return stats


def _completion_text(choice: dict[str, Any], calls: dict[int, dict[str, str]]) -> str:
    return str(choice.get("text") or "")


def _streamed(
    chunks: Iterator[Any],
    should_stop: Callable[[], bool],
    prompt_tokens: int,
    text_of: Callable[[dict[str, Any], dict[int, dict[str, str]]], str],
    started: float,
) -> Generator[str, None, TurnStats]:
    """The text of a streamed completion, and its stats (times from ``started``, before the
    request went out): the server's where it sends them."""
    stats = TurnStats(prompt_tokens=prompt_tokens, finish_reason="length")
    calls: dict[int, dict[str, str]] = {}
    try:
        for chunk in chunks:
            _take_usage(stats, chunk)
            for choice in chunk.get("choices") or []:
                text = text_of(choice, calls)
                if stats.time_to_first_token == 0.0 and (text or calls):
                    stats.time_to_first_token = time.perf_counter() - started
                if text:
                    stats.generated_tokens += 1
                    yield text
                if choice.get("finish_reason"):
                    reason = str(choice["finish_reason"])
                    stats.finish_reason = "stop" if reason in ("stop", "tool_calls") else reason
            if usage := chunk.get("usage"):
                stats.generated_tokens = int(usage.get("completion_tokens") or 0) or (
                    stats.generated_tokens
                )
        if should_stop():
            stats.finish_reason = "cancelled"
        elif calls:
            yield "".join(_markup(call) for _, call in sorted(calls.items()))
    finally:
        stats.generation_seconds = time.perf_counter() - started
    return stats


def _take_usage(stats: TurnStats, chunk: dict[str, Any]) -> None:
    """Prompt tokens, and those the server had cached (llama-server's timings, or usage)."""
    usage = chunk.get("usage") or {}
    if usage.get("prompt_tokens"):
        stats.prompt_tokens = int(usage["prompt_tokens"])
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    timings = chunk.get("timings") or {}
    if cached is None and "cache_n" in timings:
        cached = timings["cache_n"]
        stats.prompt_tokens = int(timings.get("prompt_n", 0)) + int(cached)
    if cached is not None:
        stats.cached_tokens = int(cached)


class RemoteChatBackend:
    tool_format: ToolFormat = "template"
    parallel_calls = True

    def __init__(self, server: RemoteServer, info: RemoteInfo, n_ctx: int) -> None:
        self.server = server
        self.info = info
        self.name = _display_name(server, info)
        self.n_ctx = info.n_ctx or n_ctx
        self.wire = "chat API, template: the server's"
        # The server renders the template, so the request's length in tokens is not known here:
        # estimated from its characters, at the rate the server's usage figures showed.
        self._chars_per_token = _CHARS_PER_TOKEN

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str:
        """The request's messages and tools, as JSON: what is sent is what gets counted."""
        request: dict[str, Any] = {"messages": [_on_the_wire(m) for m in messages]}
        if tools:
            request["tools"] = [t.for_template() for t in tools]
        return json.dumps(request, ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        return int(len(text) / self._chars_per_token) + 1

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
            **_sampling_body(sampling),
        }
        if force_tools:
            body["tools"] = [t.for_template() for t in force_tools]
            body["tool_choice"] = (
                {"type": "function", "function": {"name": force_tools[0].name}}
                if len(force_tools) == 1
                else "required"
            )
        elif not tools:
            body.pop("tools", None)  # the final answer: tools withheld
        started = time.perf_counter()
        chunks = self.server.stream("chat/completions", body, should_stop)
        estimate = self.count_tokens(prompt)
        stats = yield from _streamed(chunks, should_stop, estimate, _chat_text, started)
        if stats.prompt_tokens != estimate:  # the server said how long the prompt was
            # Within 1.5–5 characters a token: a server's odd figure must not make every later
            # estimate far too small (a request it refuses) or too large (compacting each turn).
            self._chars_per_token = min(5.0, max(1.5, len(prompt) / stats.prompt_tokens))
        return stats


def _chat_text(choice: dict[str, Any], calls: dict[int, dict[str, str]]) -> str:
    delta = choice.get("delta") or {}
    for call in delta.get("tool_calls") or []:
        _add_call_piece(calls, call)
    return str(delta.get("content") or "")


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
