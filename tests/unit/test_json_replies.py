"""JSON replies: every answer decodes exactly, however the stream is cut; calls become markup."""

from __future__ import annotations

import itertools
import json
from collections.abc import Generator

from hypothesis import given
from hypothesis import strategies as st

from tui_agent.agent.json_replies import json_reply_grammar, reply_schema, unwrap_json_reply
from tui_agent.agent.tool_calls import parse_reply
from tui_agent.engine.generation import TurnStats
from tui_agent.tools.base import ToolSpec


def pieces(text: str, cuts: list[int]) -> Generator[str, None, TurnStats]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    for start, end in itertools.pairwise(points):
        yield text[start:end]
    return TurnStats(generated_tokens=len(points))


def unwrapped(text: str, cuts: list[int]) -> tuple[str, TurnStats]:
    stream = unwrap_json_reply(pieces(text, cuts))
    out = []
    while True:
        try:
            out.append(next(stream))
        except StopIteration as done:
            return "".join(out), done.value


@given(st.text(), st.lists(st.integers(min_value=0), max_size=30), st.booleans())
def test_an_answer_decodes_exactly_however_it_is_cut(
    answer: str, cuts: list[int], ascii_only: bool
) -> None:
    # ensure_ascii writes \uXXXX escapes, surrogate pairs for emoji: cut anywhere inside them.
    text = json.dumps({"response": answer}, ensure_ascii=ascii_only)
    out, stats = unwrapped(text, cuts)
    assert out == answer.encode("utf-8", "replace").decode("utf-8")
    assert stats.generated_tokens > 0, "the stream's statistics are passed on"


@given(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=10), max_size=4),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_a_call_becomes_markup_the_parser_reads(
    arguments: dict[str, object], cuts: list[int]
) -> None:
    text = json.dumps({"tool_call": {"name": "grep", "arguments": arguments}})
    out, _ = unwrapped(" " + text, cuts)
    parsed = parse_reply(out)
    assert parsed.text == "" and [(c.name, c.arguments) for c in parsed.calls] == [
        ("grep", arguments)
    ]


def test_a_cut_off_call_is_left_unclosed_and_free_text_passes_whole() -> None:
    out, _ = unwrapped('{"tool_call": {"name": "grep", "argu', [])
    assert out == '<tool_call>{"name": "grep", "argu'
    assert parse_reply(out).calls[0].__class__.__name__ == "MalformedCall"
    assert unwrapped("no grammar held me", [3, 5])[0] == "no grammar held me"


def test_the_schema_and_grammar() -> None:
    tools = [
        ToolSpec("read_file", "", {"type": "object", "properties": {"path": {"type": "string"}}}),
        ToolSpec("list_dir", "", {"type": "object", "properties": {}}),
    ]
    schema = reply_schema(tools)
    assert [list(o["properties"]) for o in schema["anyOf"]] == [["tool_call"], ["response"]]
    assert reply_schema([])["required"] == ["response"]
    assert json_reply_grammar(tools) is not None and json_reply_grammar([]) is not None
