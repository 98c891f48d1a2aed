"""The lazy grammar's orchestration: free text until a call opens, then a restart under the
call's grammar from the trigger. A scripted generate() stands in for the model here; the
grammars themselves run on the real model in tests/model/test_grammar_real.py."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from tui_agent.agent.grammar import (
    find_trigger,
    forced_grammar,
    lazy_grammar,
    lazy_stream,
    may_open_bare_call,
)
from tui_agent.engine.generation import TurnStats, collect
from tui_agent.tools.base import ToolSpec

READ = ToolSpec(
    "read_file",
    "",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


class Script:
    """generate(): each call streams the next list of pieces; records what it was given."""

    def __init__(self, *runs: list[str]) -> None:
        self.runs = list(runs)
        self.calls: list[tuple[str, Any, int]] = []

    def __call__(
        self, text: str, grammar: Any, max_tokens: int, stop: Callable[[], bool]
    ) -> Generator[str, None, TurnStats]:
        self.calls.append((text, grammar, max_tokens))
        pieces = self.runs.pop(0)

        def run() -> Generator[str, None, TurnStats]:
            stats = TurnStats(prompt_tokens=100, finish_reason="stop")
            for piece in pieces:
                stats.generated_tokens += 1
                yield piece
                if stop():
                    stats.finish_reason = "cancelled"
                    return stats
            return stats

        return run()


def test_plain_text_passes_through_without_a_grammar() -> None:
    script = Script(["Hello", " there."])
    text, stats = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert text == "Hello there." and stats.generated_tokens == 2
    assert [grammar for _, grammar, _ in script.calls] == [None]


def test_a_tagged_call_restarts_under_the_grammar_from_the_trigger() -> None:
    script = Script(
        ["Let me look. <tool", '_call>\n{"na', 'me": "rea', "never reached"],
        ['{"name": "read_file", "arguments": {"path": "a"}}', "</tool_call>"],
    )
    text, stats = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert (
        text
        == 'Let me look. <tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>'
    )
    (_, none, _), (resumed, grammar, budget) = script.calls
    assert none is None and grammar is not None
    assert resumed == "Let me look. <tool_call>" and budget == 50 - 2
    assert stats.generated_tokens == 4 and stats.finish_reason == "stop"


def test_a_bare_call_is_held_until_it_is_one_then_restarted_at_its_brace() -> None:
    script = Script(
        [" {", '"name"', ': "read', '_file", "arg'],
        ['{"name": "read_file", "arguments": {"path": "b"}}'],
    )
    text, _ = collect(lazy_stream(script, [READ], "json", "", 50, lambda: False))
    assert (
        script.calls[1][0] == " " and text == ' {"name": "read_file", "arguments": {"path": "b"}}'
    )


def test_json_naming_no_offered_tool_is_never_forced_into_a_call() -> None:
    script = Script(['{"name": "Jo', 'hn", "age": 3}'])
    text, _ = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert text == '{"name": "John", "age": 3}' and len(script.calls) == 1


def test_a_fenced_call_after_some_text_restarts_at_its_brace() -> None:
    script = Script(
        ["I will search.\n```json\n", '{"name": "read_file", "x'],
        ['{"name": "read_file", "arguments": {"path": "a"}}\n```'],
    )
    text, _ = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert script.calls[1][0] == "I will search.\n```json\n" and text.endswith("}\n```")


def test_json_that_is_not_a_call_streams_once_it_is_known() -> None:
    script = Script(['{"', "answer", '": 42}'])
    text, _ = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert text == '{"answer": 42}' and len(script.calls) == 1


def test_a_cancel_before_the_restart_does_not_restart() -> None:
    cancelled = [False]
    script = Script(["<tool_call>", "x"], ["never"])

    def stop() -> bool:
        return cancelled[0]

    stream = lazy_stream(script, [READ], "hermes", "", 50, stop)
    cancelled[0] = True
    _, stats = collect(stream)
    assert len(script.calls) == 1 and stats.finish_reason == "cancelled"


def test_out_of_tokens_at_the_trigger() -> None:
    script = Script(["a", "<tool_call>"], ["never"])
    _, stats = collect(lazy_stream(script, [READ], "hermes", "", 2, lambda: False))
    assert len(script.calls) == 1 and stats.finish_reason == "length"


@pytest.mark.parametrize(
    ("family", "template", "text", "resume"),
    [
        ("hermes", "", "Sure. <tool_call>", 17),
        ("mistral", "", "[TOOL_CALLS]", 12),
        ("mistral", "[ARGS]", "[TOOL_CALLS]", None),  # v11 NAME[ARGS]: no grammar
        ("llama3", "", "<|python_tag|>", 14),
        ("phi4", "", "ok<|tool_call|>", 15),
        ("gemma", "", "```tool_code\n", None),
        ("hermes", "", '```json\n{"name": "read_file"', 8),
        ("hermes", "", 'Let me see.\n```json\n{"name": "read_file"', 20),
        ("hermes", "", '{{"name": "read_file"', 1),  # a doubled brace: restart at the second
        ("hermes", "", '{"name": "read_fi', None),  # the name is not written out yet
        ("hermes", "", '{"name": "John"', None),  # not an offered tool
        ("hermes", "", 'x {"name": "read_file"', None),  # a bare call must open the reply
    ],
)
def test_triggers(family: str, template: str, text: str, resume: int | None) -> None:
    trigger = find_trigger(text, family, template, frozenset({"read_file"}))
    assert (trigger.resume_at if trigger else None) == resume


def test_what_may_still_become_a_bare_call() -> None:
    assert may_open_bare_call("") and may_open_bare_call(' { "na') and may_open_bare_call("```js")
    assert may_open_bare_call('{"name": "read_fi')
    assert not may_open_bare_call("Hi") and not may_open_bare_call('{"answer"')
    assert not may_open_bare_call('{"name": "John", ')


def test_an_unsupported_schema_gives_no_grammar_rather_than_an_error() -> None:
    odd = ToolSpec("odd", "", {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}})
    trigger = find_trigger("<tool_call>", "hermes", "", frozenset())
    assert trigger is not None and lazy_grammar([odd], trigger) is None
    assert lazy_grammar([READ], trigger) is not None


def test_a_fence_that_may_open_a_call_is_held_so_the_restart_repeats_nothing() -> None:
    script = Script(
        ["Sure.\n```js", 'on\n{\n  "name": "re', 'ad_file", "argu'],
        ['{"name": "read_file", "arguments": {"path": "a"}}\n```'],
    )
    text, _ = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert text == 'Sure.\n```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```'


def test_an_ordinary_code_fence_streams() -> None:
    script = Script(["Run:\n```py", "thon\nprint(1)\n```"])
    stream = lazy_stream(script, [READ], "hermes", "", 50, lambda: False)
    assert next(stream) == "Run:\n```py", "no hold: this fence holds no call"
    assert collect(stream)[0] == "thon\nprint(1)\n```"


def test_a_call_planned_inside_reasoning_does_not_trigger_but_one_after_it_does() -> None:
    script = Script(
        ["<think>I will write <tool_call> next.", "</think>\n<tool_call>", "x"],
        ['{"name": "read_file", "arguments": {"path": "a"}}</tool_call>'],
    )
    text, _ = collect(lazy_stream(script, [READ], "hermes", "", 50, lambda: False))
    assert script.calls[1][0] == "<think>I will write <tool_call> next.</think>\n<tool_call>"
    assert text.endswith("</tool_call>")


def test_reasoning_the_prompt_opened_streams_and_does_not_trigger() -> None:
    script = Script(["plan: <tool_call>", " done</think>", "Answer."])
    stream = lazy_stream(script, [READ], "hermes", "", 50, lambda: False, thinking=True)
    assert next(stream) == "plan: <tool_call>", "reasoning streams as it comes"
    assert collect(stream)[0] == " done</think>Answer." and len(script.calls) == 1


def test_a_tool_without_an_input_schema_stays_callable_under_the_grammar() -> None:
    trigger = find_trigger("<tool_call>", "hermes", "", frozenset())
    assert trigger is not None
    grammar = lazy_grammar([ToolSpec("ping", "", {}), READ], trigger)
    assert grammar is not None and '\\"ping\\"' in grammar, "ping is a name it admits"


def test_a_held_string_cannot_hold_a_raw_control_character() -> None:
    """JSON forbids them; a call whose path held a raw newline failed to parse (seen on the demo
    model behind llama-server)."""
    grammar = forced_grammar([READ])
    [char] = [line for line in grammar.splitlines() if line.startswith("char ::=")]
    assert char.startswith('char ::= [^"\\\\\\x7F\\x00-\\x1F] |'), char
