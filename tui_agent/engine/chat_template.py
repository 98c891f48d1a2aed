"""Render a conversation with the model's own Jinja chat template.

``Jinja2ChatFormatter`` from llama-cpp-python already sets up the sandbox and filters chat
templates expect and passes ``tools=``; we only pin ``strftime_now`` to the session's date, because
a clock in the prompt would change its start every day and break the KV-cache prefix reuse.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_TOOL_MARKERS = ("tools", "tool_calls")


class ChatRenderer:
    def __init__(
        self,
        template: str,
        bos_token: str,
        eos_token: str,
        today: dt.date | None = None,
        adds_bos: bool = True,
    ) -> None:
        """``adds_bos``: the tokenizer puts BOS in front itself (so the template's is dropped)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.template = template
        self._formatter: Any = Jinja2ChatFormatter(
            template, eos_token=eos_token, bos_token=bos_token
        )
        self._bos = bos_token if adds_bos else ""
        fixed = dt.datetime.combine(today or dt.date.today(), dt.time(0, 0))
        self._formatter.strftime_now = fixed.strftime  # type: ignore[method-assign, assignment]

    @property
    def supports_tools(self) -> bool:
        """Whether the template renders a tools list itself (else tools go in the system prompt)."""
        return "tools" in self.template

    def render(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> str:
        response = self._formatter(messages=messages, tools=tools or None)
        prompt = str(response.prompt)
        # llama.cpp adds BOS itself when it tokenizes (for models that want one); a template that
        # also writes it would double it. Where the tokenizer adds none, the template's BOS stays.
        if self._bos and prompt.startswith(self._bos):
            prompt = prompt[len(self._bos) :]
        return prompt


def renderer_for(model: Any) -> ChatRenderer:
    """The renderer for a resident model (its template and special tokens)."""
    import llama_cpp

    llama = model.llama
    return ChatRenderer(
        model.chat_template,
        bos_token=_token_text(llama, llama.token_bos()),
        eos_token=_token_text(llama, llama.token_eos()),
        adds_bos=bool(llama_cpp.llama_vocab_get_add_bos(llama._model.vocab)),
    )


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llama.detokenize([token], special=True)).decode("utf-8", errors="replace")
