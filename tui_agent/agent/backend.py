"""The model as the agent loop sees it: render, count, stream.

``LlamaBackend`` is the real one on the resident model. Tests may pass another implementation
(a scripted model) to drive the loop deterministically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any, Protocol

from tui_agent.agent.tool_calls import PRESERVED_TOKENS
from tui_agent.engine.chat_template import ChatRenderer, renderer_for
from tui_agent.engine.generation import Sampling, TurnStats, count_tokens, stream_completion
from tui_agent.engine.resident import ResidentModel
from tui_agent.errors import ModelError
from tui_agent.tools.base import ToolSpec


class ModelBackend(Protocol):
    name: str
    n_ctx: int
    template_has_tools: bool

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]: ...


class LlamaBackend:
    """The resident llama.cpp model behind the ModelBackend protocol."""

    def __init__(self, model: ResidentModel, renderer: ChatRenderer | None = None) -> None:
        self.model = model
        self.renderer = renderer or renderer_for(model)
        self.name = model.name
        self.n_ctx = model.settings.n_ctx
        self.template_has_tools = self.renderer.supports_tools

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str:
        definitions = [t.for_template() for t in tools] if self.template_has_tools else None
        try:
            return self.renderer.render(messages, definitions)
        except Exception as exc:  # a template's raise_exception, or a Jinja error inside it
            raise ModelError(
                f"the chat template of {self.name} failed: {exc}",
                "set [model] chat_template in the config to a template that fits this conversation",
            ) from exc

    def count_tokens(self, text: str) -> int:
        return count_tokens(self.model, text)

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]:
        grammar = tool_call_grammar(force_tools) if force_tools else None
        return stream_completion(
            self.model, prompt, sampling, should_stop, grammar, PRESERVED_TOKENS
        )


def tool_call_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """A JSON schema that only admits a call of one of the tools with valid arguments."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.input_schema},
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def tool_call_grammar(tools: list[ToolSpec]) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(json.dumps(tool_call_schema(tools)), verbose=False)
