"""The lazy grammar on the real demo GGUF: once a call opens, what follows is a valid call of an
offered tool (name and arguments checked against its schema), whatever the model would write."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.grammar import find_trigger, lazy_grammar, lazy_stream
from tui_agent.agent.tool_calls import ParsedCall, parse_reply
from tui_agent.config import ModelConfig, load_config
from tui_agent.engine import resident
from tui_agent.engine.generation import GREEDY, TurnStats, collect
from tui_agent.tools.base import ToolSpec, argument_errors
from tui_agent.tools.setup import build_tools

pytestmark = pytest.mark.model
TOOLS = [
    ToolSpec(
        "read_file",
        "Read a text file.",
        {
            "type": "object",
            "properties": {"path": {"type": "string"}, "start_line": {"type": "integer"}},
            "required": ["path"],
        },
    ),
    ToolSpec(
        "list_dir",
        "List a directory.",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    ),
]


@pytest.fixture
def backend(demo_gguf: Path) -> LlamaBackend:
    return LlamaBackend(
        resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))
    )


def prompt(backend: LlamaBackend) -> str:
    return backend.render(
        [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "What is in the file notes.txt?"},
        ],
        TOOLS,
    )


@pytest.mark.parametrize(
    "opening",
    ["I will read it. <tool_call>", ' {"name": "read_file"', '```json\n{"name": "list_dir"'],
)
def test_what_follows_a_trigger_is_a_valid_call(backend: LlamaBackend, opening: str) -> None:
    """The model's first words are scripted to open a call; the rest is the real model's."""
    sampling = replace(GREEDY, max_tokens=120, repeat_penalty=1.3)
    calls = []

    def generate(text, grammar, max_tokens, stop):  # type: ignore[no-untyped-def]
        calls.append((text, grammar))
        if grammar is None:  # the free part: the opening, as if the model had written it

            def opened():  # type: ignore[no-untyped-def]
                yield opening
                return TurnStats(generated_tokens=1)

            return opened()
        return backend.complete(
            prompt(backend) + text, replace(sampling, max_tokens=max_tokens), stop, grammar
        )

    stream = lazy_stream(generate, TOOLS, backend.family, "", 120, lambda: False)
    text, stats = collect(stream)
    assert len(calls) == 2 and calls[1][1] is not None, "the restart ran under a grammar"
    reply = parse_reply(text)
    assert len(reply.calls) == 1, text
    call = reply.calls[0]
    assert isinstance(call, ParsedCall) and call.name in ("read_file", "list_dir"), text
    spec = next(t for t in TOOLS if t.name == call.name)
    assert argument_errors(spec.input_schema, call.arguments) == []
    assert stats.finish_reason == "stop", "the grammar closed the call and the model stopped"


def test_the_grammar_compiles_for_the_built_in_tools(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[tools]\nworkspace_root = "{tmp_path}"\n')
    stack = build_tools(load_config(config), with_mcp_servers=False)
    stack.start()
    try:
        specs = stack.gate.specs()
        trigger = find_trigger("<tool_call>", "hermes", "", frozenset())
        assert trigger is not None and len(specs) == 7 and lazy_grammar(specs, trigger) is not None
    finally:
        stack.close()


@pytest.mark.parametrize(
    ("question", "offered"),
    [
        ("What is in the file notes.txt?", TOOLS),
        ("Say hello in one short sentence.", TOOLS),
        ("Say hello in one short sentence.", []),
    ],
)
def test_json_replies_are_a_valid_call_or_an_answer(
    demo_gguf: Path, question: str, offered: list[ToolSpec]
) -> None:
    """Whatever the model would write, the reply is one JSON call of an offered tool with valid
    arguments, or an answer (only an answer when none is offered)."""
    model = resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))
    backend = LlamaBackend(model, tool_format="json")
    conversation = Conversation(system_prompt="You are a helpful assistant.")
    conversation.append(Message("user", question))
    prompt_text = backend.render(conversation.for_template(offered, "json"), offered)
    sampling = replace(GREEDY, max_tokens=400, repeat_penalty=1.3)
    text, stats = collect(backend.stream(prompt_text, sampling, lambda: False, None, offered))
    assert stats.finish_reason == "stop", f"the grammar closed the reply: {text!r}"
    reply = json.loads(text)
    assert list(reply) in (["tool_call"], ["response"]), text
    if "tool_call" in reply:
        assert offered, "no call without tools"
        call = reply["tool_call"]
        spec = next(t for t in offered if t.name == call["name"])
        assert argument_errors(spec.input_schema, call["arguments"]) == []
    else:
        assert isinstance(reply["response"], str)
