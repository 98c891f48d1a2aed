"""Chat templates for a GGUF that has none, chosen by what its vocabulary can write.

A model without ``tokenizer.chat_template`` used to get ChatML whatever it was; a model whose
vocabulary has no ``<|im_end|>`` then never ended its turn. Here the template follows the turn
markup the vocabulary holds (Llama 3, ChatML, Gemma, Phi-3, else Mistral/Llama 2 ``[INST]`` for
Llama-family models), and each says how a turn ends: the token that closes it (generation stops
at that token even where the vocabulary does not flag it as end-of-generation) or, for the plain
transcript used when nothing fits, the text that would start the next turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FallbackTemplate:
    name: str
    template: str
    end_tokens: frozenset[str] = frozenset()  # special tokens that end the model's turn
    stop_strings: tuple[str, ...] = ()  # text that ends it, where no token does


LLAMA3 = FallbackTemplate(
    "Llama 3",
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] or '' }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
    frozenset({"<|eot_id|>"}),
)
CHATML = FallbackTemplate(
    "ChatML",
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n'"
    " + (message['content'] or '') + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    frozenset({"<|im_end|>"}),
)
GEMMA = FallbackTemplate(
    "Gemma",
    "{{ bos_token }}{% set system = messages[0]['content'] if messages[0]['role'] == 'system'"
    " else '' %}{% for m in messages if m['role'] != 'system' %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if loop.first and system %}{{ system }}\n\n{% endif %}{{ m['content'] or '' }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
    frozenset({"<end_of_turn>"}),
)
PHI3 = FallbackTemplate(
    "Phi-3",
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] or '' }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
    frozenset({"<|end|>"}),
)
INST = FallbackTemplate(
    "Mistral [INST]",
    "{{ bos_token }}{% set system = messages[0]['content'] if messages[0]['role'] == 'system'"
    " else '' %}{% for m in messages if m['role'] != 'system' %}"
    "{% if m['role'] == 'assistant' %} {{ m['content'] or '' }}{{ eos_token }}"
    "{% else %}[INST] {% if loop.first and system %}{{ system }}\n\n{% endif %}"
    "{{ m['content'] or '' }} [/INST]{% endif %}{% endfor %}",
    stop_strings=("[INST]",),
)
PLAIN = FallbackTemplate(
    "plain transcript",
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] or '' }}\n\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}",
    stop_strings=("\nUser:", "\nSystem:"),
)


def fallback_template(architecture: str, has_token: Callable[[str], bool]) -> FallbackTemplate:
    """The template for a model without one; ``has_token(text)`` says whether the vocabulary
    holds ``text`` as one token."""
    for candidate, markers in (
        (LLAMA3, ("<|start_header_id|>", "<|eot_id|>")),
        (CHATML, ("<|im_start|>", "<|im_end|>")),
        (GEMMA, ("<start_of_turn>", "<end_of_turn>")),
        (PHI3, ("<|user|>", "<|end|>")),
    ):
        if all(has_token(marker) for marker in markers):
            return candidate
    if architecture in ("llama", "mistral", "mistral3", "mixtral"):
        return INST
    return PLAIN
