"""A scripted model for deterministic agent-loop and UI tests, plus a small tool registry.

The scripted model renders prompts with a real Jinja chat template (so conversations go through
the same rendering as on a real model) and streams canned replies in small pieces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from tui_agent.agent.backend import resolve_tool_format
from tui_agent.agent.compaction import SUMMARY_INSTRUCTIONS
from tui_agent.engine.chat_template import ChatRenderer
from tui_agent.engine.generation import Sampling, TurnStats
from tui_agent.tools.base import CallContext, ToolCall, ToolOutcome, ToolSpec

# ChatML that renders tools and tool calls (a trimmed Qwen 2.5 style template).
CHATML_WITH_TOOLS = """{%- if tools %}<|im_start|>system
{{ messages[0]['content'] }}
# Tools
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools><|im_end|>
{% else %}<|im_start|>system
{{ messages[0]['content'] }}<|im_end|>
{% endif %}
{%- for message in messages[1:] %}
{%- if message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{{ message.content }}
{%- for tc in message.tool_calls %}
<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

SUMMARY_MARKER = SUMMARY_INSTRUCTIONS.split("{")[0][:40]


@dataclass
class ScriptedBackend:
    replies: list[str]
    n_ctx: int = 4096
    template: str = CHATML_WITH_TOOLS
    piece_size: int = 3
    summaries: list[str] = field(default_factory=list)
    finish_reason: str = "stop"
    # After this many pieces the stream waits for `resume` (so a test can cancel mid-reply).
    pause_after: int | None = None
    resume: threading.Event = field(default_factory=threading.Event)
    # Seconds between pieces, as a real model takes between tokens.
    piece_delay: float = 0.0
    prompts: list[str] = field(default_factory=list)
    summary_prompts: list[str] = field(default_factory=list)
    grammars: list[Any] = field(default_factory=list)
    # The tools each call offered for a lazy grammar (None: no grammar may engage).
    offered: list[list[ToolSpec] | None] = field(default_factory=list)
    name: str = "scripted"
    # Whether the template renders two calls in one assistant turn (Llama 3.2's refuses).
    parallel_calls: bool = True
    # Times for the turn statistics; the snapshot scenarios pass a steady fake clock.
    clock: Callable[[], float] = time.perf_counter
    # As [model] tool_format says: auto | json | tagged (resolved with the template).
    tool_format: str = "auto"
    # Cores other programs kept busy, as the engine's thread governor reports it.
    busy_cores: float = 0.0

    def __post_init__(self) -> None:
        self.renderer = ChatRenderer(self.template, bos_token="", eos_token="<|im_end|>")
        self.tool_format = resolve_tool_format(self.tool_format, self.renderer.supports_tools)
        self._previous = ""

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str:
        return self.renderer.render(
            messages, [t.for_template() for t in tools] if self.tool_format == "template" else None
        )

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def interrupt(self) -> None:
        """The stream checks should_stop between pieces; nothing runs between them."""

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]:
        self.offered.append(tools)
        if SUMMARY_MARKER in prompt:
            self.summary_prompts.append(prompt)
            reply = (
                self.summaries.pop(0) if self.summaries else f"SUMMARY {len(self.summary_prompts)}"
            )
        else:
            self.prompts.append(prompt)
            self.grammars.append(force_tools)
            reply = self.replies.pop(0) if self.replies else "(script ended)"
        common = 0
        for a, b in zip(self._previous, prompt, strict=False):
            if a != b:
                break
            common += 1
        self._previous = prompt
        stats = TurnStats(prompt_tokens=self.count_tokens(prompt), cached_tokens=common // 4)
        started = self.clock()
        for index, start in enumerate(range(0, len(reply), self.piece_size)):
            if index == self.pause_after:
                self.resume.wait(10)
            if self.piece_delay:
                time.sleep(self.piece_delay)
            if should_stop():
                stats.finish_reason = "cancelled"
                return stats
            stats.generated_tokens += 1
            # One clock reading per piece, as a real stream has one per token.
            elapsed = self.clock() - started
            if index == 0:
                stats.time_to_first_token = elapsed
            stats.generation_seconds = elapsed
            yield reply[start : start + self.piece_size]
        stats.finish_reason = self.finish_reason
        stats.busy_cores = self.busy_cores
        return stats


@dataclass
class FunctionTools:
    """Python functions as tools, for loop tests; records every call that ran."""

    functions: dict[str, tuple[ToolSpec, Callable[..., Any]]] = field(default_factory=dict)
    ran: list[ToolCall] = field(default_factory=list)

    def add(
        self,
        name: str,
        fn: Callable[..., Any],
        properties: dict[str, Any] | None = None,
        required: list[str] | None = None,
    ) -> FunctionTools:
        schema = {"type": "object", "properties": properties or {}, "required": required or []}
        self.functions[name] = (ToolSpec(name, fn.__doc__ or name, schema), fn)
        return self

    def specs(self) -> list[ToolSpec]:
        return [spec for spec, _ in self.functions.values()]

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        self.ran.append(call)
        _, fn = self.functions[call.name]
        try:
            return ToolOutcome(True, str(fn(**call.arguments)))
        except Exception as exc:
            return ToolOutcome(False, f"error: {exc}")
