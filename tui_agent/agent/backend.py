"""The model as the agent loop sees it: render, count, stream.

``LlamaBackend`` is the real one on the resident model; a server's raw completions are another
``TemplateBackend`` (agent/remote_backend.py). Tests may pass another implementation (a scripted
model) to drive the loop deterministically.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from tui_agent.agent.conversation import ToolFormat
from tui_agent.agent.grammar import forced_grammar, lazy_stream
from tui_agent.agent.json_replies import json_reply_grammar
from tui_agent.agent.tool_calls import PRESERVED_TOKENS, detect_family, opens_reasoning
from tui_agent.engine.chat_template import ChatRenderer, renderer_for
from tui_agent.engine.generation import Sampling, TurnStats, count_tokens, stream_completion
from tui_agent.engine.resident import ResidentModel
from tui_agent.errors import ModelError
from tui_agent.tools.base import ToolSpec


class ModelBackend(Protocol):
    name: str
    n_ctx: int
    tool_format: ToolFormat
    # Whether the template renders several calls in one turn; if not, a reply's first call runs.
    parallel_calls: bool

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def interrupt(self) -> None:
        """Stop the completion running now, mid-prompt too (called from any thread)."""
        ...

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]:
        """A completion; ``force_tools`` makes it one call of those tools, ``tools`` (the ones
        offered) engages a grammar once the reply opens a call. In the "json" tool format
        ``tools`` holds the whole reply to a JSON call of one of them or an answer (an answer
        only, when empty)."""
        ...


@runtime_checkable
class SavesState(Protocol):
    """A backend that can save the model's state of a session, so that coming back to it later
    costs a restore, not a re-read (in-process: engine/state_cache.py; llama-server: its slot
    files, engine/server_slots.py). The worker calls these when it goes idle after a turn."""

    session: str  # the session whose prompts run now: its saved states carry its id

    def keep_state(self) -> None: ...

    def finish_saving(self) -> None:
        """Wait for the states being written (before the process ends)."""

    def state_notices(self) -> list[str]:
        """What saving states has to tell the user, once (the disk is full, …)."""


class TemplateBackend:
    """A model whose prompt llamachat renders with the model's chat template and whose calls
    llamachat's own parsers and grammars read: in-process, or a server's raw completions."""

    def __init__(self, name: str, n_ctx: int, renderer: ChatRenderer, tool_format: str) -> None:
        self.name = name
        self.n_ctx = n_ctx
        self.renderer = renderer
        self.tool_format = resolve_tool_format(tool_format, self.renderer.supports_tools)
        # The markup the model is prompted to write calls in: the template's own, or the
        # <tool_call> form that the system prompt describes, and JSON replies are turned into.
        template_calls = self.tool_format == "template"
        self.family = detect_family(self.renderer.template) if template_calls else "hermes"
        # JSON replies hold one call each; tagged calls are text, any number renders.
        self.parallel_calls = self.tool_format == "tagged" or (
            template_calls and self._renders_two_calls()
        )

    def _renders_two_calls(self) -> bool:
        """Try the template on a turn with two calls (Llama 3.2's raises on it)."""
        calls = [
            {"id": f"call0000{n}", "type": "function", "function": {"name": "f", "arguments": {}}}
            for n in (1, 2)
        ]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "", "tool_calls": calls},
            *(
                {"role": "tool", "tool_call_id": c["id"], "name": "f", "content": "r"}
                for c in calls
            ),
        ]
        try:
            self.renderer.render(messages, [ToolSpec("f", "").for_template()])
        except Exception:
            return False
        return True

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str:
        definitions = [t.for_template() for t in tools] if self.tool_format == "template" else None
        try:
            return self.renderer.render(messages, definitions)
        except Exception as exc:  # a template's raise_exception, or a Jinja error inside it
            raise ModelError(
                f"the chat template of {self.name} failed: {exc}",
                "set [model] chat_template in the config to a template that fits this conversation",
            ) from exc

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def interrupt(self) -> None:
        raise NotImplementedError

    def complete(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        grammar: str | None,
    ) -> Generator[str, None, TurnStats]:
        """One raw completion of the rendered prompt, held to a GBNF grammar when given."""
        raise NotImplementedError

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]:
        def generate(
            text: str, grammar: str | None, max_tokens: int, stop: Callable[[], bool]
        ) -> Generator[str, None, TurnStats]:
            return self.complete(
                prompt + text, replace(sampling, max_tokens=max_tokens), stop, grammar
            )

        if force_tools:
            return generate("", forced_grammar(force_tools), sampling.max_tokens, should_stop)
        if self.tool_format == "json" and tools is not None:
            return generate("", json_reply_grammar(tools), sampling.max_tokens, should_stop)
        if not tools:
            return generate("", None, sampling.max_tokens, should_stop)
        return lazy_stream(
            generate,
            tools,
            self.family,
            self.renderer.template,
            sampling.max_tokens,
            should_stop,
            thinking=opens_reasoning(prompt),
        )


class LlamaBackend(TemplateBackend):
    """The resident llama.cpp model behind the ModelBackend protocol."""

    def __init__(
        self,
        model: ResidentModel,
        renderer: ChatRenderer | None = None,
        tool_format: str = "auto",
    ) -> None:
        self.model = model
        # The session whose prompts run now: the model states saved for it carry its id.
        self.session = ""
        super().__init__(
            model.name, model.settings.n_ctx, renderer or renderer_for(model), tool_format
        )

    def keep_state(self) -> None:
        cache = self.model.state_cache
        if cache is not None:
            with self.model.in_use() as llama:
                cache.keep(llama)

    def finish_saving(self) -> None:
        cache = self.model.state_cache
        if cache is not None and cache.shelf is not None:
            cache.shelf.flush()

    def state_notices(self) -> list[str]:
        cache = self.model.state_cache
        return cache.shelf.take_notices() if cache is not None and cache.shelf else []

    def count_tokens(self, text: str) -> int:
        return count_tokens(self.model, text)

    def interrupt(self) -> None:
        self.model.interrupt()

    def complete(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        grammar: str | None,
    ) -> Generator[str, None, TurnStats]:
        from llama_cpp.llama_grammar import LlamaGrammar

        compiled = LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
        return stream_completion(
            self.model, prompt, sampling, should_stop, compiled, PRESERVED_TOKENS, self.session
        )


def resolve_tool_format(preference: str, template_has_tools: bool) -> ToolFormat:
    """The tool format for a model: "auto" uses the template's tools when it has them and
    <tool_call> markup when it has none. JSON replies are asked for by name only: their grammar
    holds every token, which cost 40% of the decode rate on the demo model (llama-cpp-python
    applies it to the whole vocabulary), and that model then called a tool to say hello."""
    if preference in ("json", "tagged"):
        return "json" if preference == "json" else "tagged"
    return "template" if template_has_tools else "tagged"
