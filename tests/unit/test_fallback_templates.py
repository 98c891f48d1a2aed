"""Templates for a GGUF without one: chosen by the vocabulary, each renders a real conversation."""

from __future__ import annotations

import pytest

from tui_agent.engine.chat_template import ChatRenderer
from tui_agent.engine.fallback_templates import (
    CHATML,
    GEMMA,
    INST,
    LLAMA3,
    PHI3,
    PLAIN,
    FallbackTemplate,
    fallback_template,
)

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Bye"},
]


@pytest.mark.parametrize(
    ("architecture", "tokens", "expected"),
    [
        ("llama", {"<|start_header_id|>", "<|eot_id|>"}, LLAMA3),
        ("qwen2", {"<|im_start|>", "<|im_end|>"}, CHATML),
        ("llama", {"<|im_start|>", "<|im_end|>"}, CHATML),
        ("gemma3", {"<start_of_turn>", "<end_of_turn>"}, GEMMA),
        ("phi3", {"<|user|>", "<|end|>"}, PHI3),
        ("llama", set(), INST),
        ("gpt2", set(), PLAIN),
        ("qwen2", {"<|im_start|>"}, PLAIN),  # no <|im_end|>: ChatML would never end a turn
    ],
)
def test_the_template_follows_the_vocabulary(
    architecture: str, tokens: set[str], expected: FallbackTemplate
) -> None:
    assert fallback_template(architecture, tokens.__contains__) == expected


@pytest.mark.parametrize("template", [LLAMA3, CHATML, GEMMA, PHI3, INST, PLAIN])
def test_every_fallback_renders_a_conversation_and_says_how_a_turn_ends(
    template: FallbackTemplate,
) -> None:
    prompt = ChatRenderer(template.template, bos_token="<s>", eos_token="</s>").render(CONVERSATION)
    for text in ("Be brief.", "Hi", "Hello.", "Bye"):
        assert text in prompt
    assert prompt.index("Hi") < prompt.index("Hello.") < prompt.index("Bye")
    assert template.end_tokens or template.stop_strings


def test_bos_is_kept_where_the_tokenizer_adds_none() -> None:
    template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    adds = ChatRenderer(template, bos_token="<s>", eos_token="</s>", adds_bos=True)
    keeps = ChatRenderer(template, bos_token="<s>", eos_token="</s>", adds_bos=False)
    assert adds.render(CONVERSATION) == "Be brief.HiHello.Bye"
    assert keeps.render(CONVERSATION) == "<s>Be brief.HiHello.Bye"


# Llama 3.2's rule, trimmed: one call per assistant turn.
ONE_CALL_TEMPLATE = (
    "{% for m in messages %}{% if m.tool_calls %}{% if m.tool_calls | length != 1 %}"
    "{{ raise_exception('This model only supports single tool-calls at once!') }}{% endif %}"
    "{% endif %}{{ m['content'] }}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
)


def test_the_backend_learns_whether_its_template_takes_several_calls() -> None:
    from tests.scripted import CHATML_WITH_TOOLS
    from tui_agent.agent.backend import LlamaBackend

    class Model:  # just what LlamaBackend reads before any generation
        name = "m"

        class settings:
            n_ctx = 512

    for template, parallel in ((ONE_CALL_TEMPLATE, False), (CHATML_WITH_TOOLS, True)):
        renderer = ChatRenderer(template, bos_token="", eos_token="")
        backend = LlamaBackend(Model(), renderer)  # type: ignore[arg-type]
        assert backend.parallel_calls is parallel
