"""Tool-call parsing: golden outputs per model family, and arbitrary output never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_agent.agent.tool_calls import (
    MalformedCall,
    ParsedCall,
    ReplySplitter,
    detect_family,
    parse_reply,
)

GOLDEN = [
    # Hermes / Qwen 2.5
    (
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>',
        "",
        [ParsedCall("read_file", {"path": "a.txt"})],
    ),
    (
        'I will look.\n<tool_call>\n{"name": "ls", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "pwd", "arguments": {}}\n</tool_call>',
        "I will look.",
        [ParsedCall("ls", {}), ParsedCall("pwd", {})],
    ),
    (
        '<tool_call>{"name": "x", "arguments": "{\\"a\\": 1}"}</tool_call>',
        "",
        [ParsedCall("x", {"a": 1})],
    ),
    (
        '<tool_call>{"name": "x", "arguments": {"a": 1}}',
        "",
        [ParsedCall("x", {"a": 1})],
    ),  # unclosed
    (
        '<tool_call>```json\n{"name": "x", "arguments": {}}\n```</tool_call>',
        "",
        [ParsedCall("x", {})],
    ),
    # Qwen3-Coder XML style
    (
        "<tool_call>\n<function=write_file>\n<parameter=path>\nsrc/a.py\n</parameter>\n<parameter=content>\nprint(1)\n</parameter>\n</function>\n</tool_call>",
        "",
        [ParsedCall("write_file", {"path": "src/a.py", "content": "print(1)"})],
    ),
    (
        "<function=grep>\n<parameter=pattern>\nTODO\n</parameter>\n<parameter=max>\n5\n</parameter>\n</function>",
        "",
        [ParsedCall("grep", {"pattern": "TODO", "max": 5})],
    ),
    # Llama 3.x
    (
        '<|python_tag|>{"name": "get_time", "parameters": {"tz": "UTC"}}',
        "",
        [ParsedCall("get_time", {"tz": "UTC"})],
    ),
    (
        '{"name": "get_time", "parameters": {"tz": "UTC"}}',
        "",
        [ParsedCall("get_time", {"tz": "UTC"})],
    ),
    (
        '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {}}',
        "",
        [ParsedCall("a", {}), ParsedCall("b", {})],
    ),
    # Mistral
    (
        '[TOOL_CALLS][{"name": "search", "arguments": {"q": "llama"}}]',
        "",
        [ParsedCall("search", {"q": "llama"})],
    ),
    ('[TOOL_CALLS]search[ARGS]{"q": "llama"}', "", [ParsedCall("search", {"q": "llama"})]),
    (
        'Sure.[TOOL_CALLS]a[ARGS]{"x": 1}[TOOL_CALLS]b[ARGS]{}',
        "Sure.",
        [ParsedCall("a", {"x": 1}), ParsedCall("b", {})],
    ),
    # Llama 3.1 built-in function style
    (
        '<function=get_weather>{"city": "Oslo"}</function>',
        "",
        [ParsedCall("get_weather", {"city": "Oslo"})],
    ),
    # Phi-4 (closed) and Granite (unclosed)
    (
        'Let me check.<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]<|/tool_call|>',
        "Let me check.",
        [ParsedCall("get_weather", {"city": "Oslo"})],
    ),
    (
        '<|tool_call|>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"n": 1}}]',
        "",
        [ParsedCall("a", {}), ParsedCall("b", {"n": 1})],
    ),
    # Gemma 3 tool_code, LFM2 pythonic, bare pythonic lists
    (
        'I will look it up.\n```tool_code\nget_weather(city="Oslo", days=2)\n```',
        "I will look it up.",
        [ParsedCall("get_weather", {"city": "Oslo", "days": 2})],
    ),
    (
        '<|tool_call_start|>[get_weather(city="Oslo"), list_dir()]<|tool_call_end|>Checking.',
        "Checking.",
        [ParsedCall("get_weather", {"city": "Oslo"}), ParsedCall("list_dir", {})],
    ),
    (
        '[read_file(path="a.txt", start_line=3)]',
        "",
        [ParsedCall("read_file", {"path": "a.txt", "start_line": 3})],
    ),
    # A fenced call after some text, and a doubled brace
    (
        'I will check.\n```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```',
        "I will check.",
        [ParsedCall("read_file", {"path": "a"})],
    ),
    ('{{"name": "t", "arguments": {"n": 1}}}', "", [ParsedCall("t", {"n": 1})]),
    # Plain JSON fallback, OpenAI shape, lists, fences
    ('{"name": "t", "arguments": {"n": 2}}', "", [ParsedCall("t", {"n": 2})]),
    (
        '[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]',
        "",
        [ParsedCall("a", {}), ParsedCall("b", {})],
    ),
    ('```json\n{"name": "t", "arguments": {}}\n```', "", [ParsedCall("t", {})]),
    ('{"function": {"name": "t", "arguments": "{}"}}', "", [ParsedCall("t", {})]),
    # Not tool calls
    ("Just an answer.", "Just an answer.", []),
    ('{"answer": 42}', '{"answer": 42}', []),
    ("Use `{name}` in templates.", "Use `{name}` in templates.", []),
    ("[see the docs](https://x.y)", "[see the docs](https://x.y)", []),
    ("<tool_response>\ncreated a.txt\n</tool_response>\nDone.", "Done.", []),
    ("Done. <tool_response> created a.txt", "Done.", []),
    ("<tool_response name='read_file'>\n1: Not here\n</tool_response>\nNo.", "No.", []),
    ('<tool_response>{"name": "Ann", "age": 3}</tool_response>Ann is 3.', "Ann is 3.", []),
    ("[f(x) for x in xs]", "[f(x) for x in xs]", []),
    # A call in the result's tags (Qwen2.5-Coder-1.5B with the tools in the system prompt)
    (
        '<tool_response>\n{\n  "name": "list_dir",\n  "arguments": {"path": "."}\n}\n</tool_response>',
        "",
        [ParsedCall("list_dir", {"path": "."})],
    ),
]


@pytest.mark.parametrize(("output", "text", "calls"), GOLDEN)
def test_golden(output: str, text: str, calls: list[ParsedCall]) -> None:
    reply = parse_reply(output)
    assert reply.text == text
    assert reply.calls == calls


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ('<tool_call>{"name": "x", "arguments": {a: 1}}</tool_call>', "invalid JSON"),
        ("<tool_call>[1, 2]</tool_call>", "must be a JSON object"),
        ('<tool_call>{"arguments": {}}</tool_call>', 'no "name"'),
        (
            '<tool_call>{"name": "x", "arguments": [1]}</tool_call>',
            "arguments must be a JSON object",
        ),
        ('<tool_call>{"name": "x", "arguments": "not json"}</tool_call>', "not valid JSON"),
        ("<tool_call></tool_call>", "empty tool call"),
        ("[TOOL_CALLS]oops", "invalid JSON"),
        ("<|python_tag|>print(1)", "invalid JSON"),
    ],
)
def test_malformed_calls_become_errors(output: str, error: str) -> None:
    reply = parse_reply(output)
    assert len(reply.calls) >= 1
    bad = reply.calls[-1]
    assert isinstance(bad, MalformedCall) and error in bad.error


@pytest.mark.parametrize(
    ("output", "error", "name"),
    [
        ('```tool_code\nget_weather("Oslo")\n```', "given by name", "get_weather"),
        ("```tool_code\nget_weather(city=os.getcwd())\n```", "literals", "get_weather"),
        (
            "<|tool_call_start|>[get_weather(city=]<|tool_call_end|>",
            "not a Python call",
            "get_weather",
        ),
        ("<|tool_call|>[{name: 1}]<|/tool_call|>", "invalid JSON", ""),
    ],
)
def test_malformed_family_calls(output: str, error: str, name: str) -> None:
    bad = parse_reply(output).calls[-1]
    assert isinstance(bad, MalformedCall) and error in bad.error and bad.name == name


def test_malformed_call_keeps_the_name_when_it_can() -> None:
    bad = parse_reply('<tool_call>{"name": "read_file", "arguments": {path: 1}}</tool_call>').calls[
        0
    ]
    assert isinstance(bad, MalformedCall) and bad.name == "read_file"


@pytest.mark.parametrize(
    ("template", "family"),
    [
        ("{% if tools %}<tool_call>{% endif %}", "hermes"),
        ("<tool_call>\n<function=NAME>\n<parameter=x>", "qwen3_coder"),
        ("[AVAILABLE_TOOLS][TOOL_CALLS]", "mistral"),
        ("<|start_header_id|>ipython<|end_header_id|>", "llama3"),
        ("<|tool_call|>{{ x }}<|/tool_call|>", "phi4"),
        ("<|start_of_role|>assistant<|end_of_role|><|tool_call|>", "granite"),
        ("<|tool_call_start|>[{{ call }}]<|tool_call_end|>", "lfm2"),
        ("<start_of_turn>user\n{{ m }}<end_of_turn>", "gemma"),
        ("{{ messages }}", "json"),
    ],
)
def test_family_from_template(template: str, family: str) -> None:
    assert detect_family(template) == family


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list('{}[]":,<>/=|_ abcnametoolcallTOOLCALLSARGSpythontagfunctionparameter\n01')
        ),
        max_size=200,
    )
)
def test_arbitrary_output_never_raises(output: str) -> None:
    reply = parse_reply(output)
    assert isinstance(reply.text, str)
    splitter = ReplySplitter()
    for piece in (output[i : i + 3] for i in range(0, len(output), 3)):
        splitter.feed(piece)
    splitter.finish()


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300), st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=50)
)
def test_plain_text_streams_through_unchanged(text: str, sizes: list[int]) -> None:
    """For replies without calls, what streams plus the rest at the end is exactly the reply."""
    if parse_reply(text).calls:
        return
    splitter = ReplySplitter()
    shown, position, index = "", 0, 0
    while position < len(text):
        size = sizes[index % len(sizes)]
        shown += splitter.feed(text[position : position + size])[0]
        position, index = position + size, index + 1
    _, rest = splitter.finish()
    assert shown + rest == text or (shown + rest).strip() == text.strip()


def test_marker_split_across_pieces_is_never_shown() -> None:
    splitter = ReplySplitter()
    shown = "".join(
        splitter.feed(p)[0]
        for p in ["Hi <tool", "_ca", 'll>{"name": "x", "arguments": {}}</tool_call>']
    )
    reply, rest = splitter.finish()
    assert shown == "Hi " and rest == "" and reply.calls == [ParsedCall("x", {})]


def stream(pieces: list[str]) -> tuple[str, list[ParsedCall | MalformedCall], str]:
    splitter = ReplySplitter()
    shown = "".join(splitter.feed(p)[0] for p in pieces)
    reply, rest = splitter.finish()
    return shown, reply.calls, rest


def test_the_first_call_of_several_json_lines_is_taken_and_the_rest_dropped() -> None:
    reply = (
        '{"name": "read_file", "arguments": {"path": "a.txt"}}\n'
        "<tool_response>\nhello\n</tool_response>\n"
        '{"name": "read_file", "arguments": {"path": "b.txt"}}'
    )
    shown, calls, rest = stream([reply[i : i + 5] for i in range(0, len(reply), 5)])
    assert calls == [ParsedCall("read_file", {"path": "a.txt"})]
    assert shown == "" and rest == "", "neither the call nor the echoed response is shown"


def test_a_fenced_call_is_run_not_shown() -> None:
    reply = '```json\n{"name": "list_dir", "arguments": {}}\n```'
    shown, calls, rest = stream([reply[i : i + 2] for i in range(0, len(reply), 2)])
    assert calls == [ParsedCall("list_dir", {})] and shown == "" and rest == ""


def test_a_code_fence_streams_as_it_comes() -> None:
    shown, calls, rest = stream(["``", "`python\n", "print(1)\n", "```\nDone."])
    assert (
        calls == []
        and shown.startswith("```python\nprint(1)")
        and shown + rest == ("```python\nprint(1)\n```\nDone.")
    )


@pytest.mark.parametrize(("output", "text", "calls"), [g for g in GOLDEN if g[2]])
@pytest.mark.parametrize("size", [1, 3, 8])
def test_streaming_shows_no_markup(
    output: str, text: str, calls: list[ParsedCall], size: int
) -> None:
    """Every family's reply, streamed in pieces: the user sees the text and never the call."""
    shown, parsed, rest = stream([output[i : i + size] for i in range(0, len(output), size)])
    assert parsed == calls
    assert (shown + rest).split() == text.split(), (shown, rest)


@pytest.mark.parametrize("size", [1, 2, 5, 40])
def test_reasoning_streams_apart_and_is_kept_out_of_the_text(size: int) -> None:
    """Qwen3: <think> first, then the call; the user sees neither tag nor call as text."""
    reply = (
        "<think>\nThe user wants the weather. I should call get_weather.\n</think>\n\n"
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    )
    splitter = ReplySplitter()
    shown, thought = "", ""
    for i in range(0, len(reply), size):
        text, reasoning = splitter.feed(reply[i : i + size])
        shown, thought = shown + text, thought + reasoning
    thought += splitter.unreleased_reasoning
    parsed, rest = splitter.finish()
    assert thought.strip() == "The user wants the weather. I should call get_weather."
    assert parsed.reasoning == thought.strip() and "<think>" not in shown + rest
    assert (shown + rest).strip() == "Let me check." == parsed.text
    assert parsed.calls == [ParsedCall("get_weather", {"city": "Oslo"})]


def test_reasoning_opened_by_the_prompt_and_never_closed() -> None:
    splitter = ReplySplitter(thinking=True)
    assert splitter.feed("Hmm, let me think") == ("", "Hmm, let me think")
    assert splitter.feed(" more </thi") == ("", " more ")
    parsed, rest = splitter.finish()
    assert parsed.reasoning == "Hmm, let me think more </thi" and parsed.text == "" and rest == ""


def test_text_that_only_looks_like_think_at_first() -> None:
    splitter = ReplySplitter()
    assert splitter.feed("<th") == ("", "")
    assert splitter.feed("ings> are tags") == ("<things> are tags", "")
    parsed, _ = splitter.finish()
    assert parsed.reasoning == "" and parsed.text == "<things> are tags"


def test_a_json_fence_that_is_no_call_is_shown_whole_at_the_end() -> None:
    reply = 'Here:\n```json\n{"a": 1}\n```\nDone.'
    shown, calls, rest = stream([reply[i : i + 3] for i in range(0, len(reply), 3)])
    assert calls == [] and shown + rest == reply and "{" not in shown


def test_an_echoed_tool_response_never_streams() -> None:
    reply = "<tool_response>\ncreated hello.txt (3 bytes)\n</tool_response>\nI created it."
    shown, calls, rest = stream([reply[i : i + 4] for i in range(0, len(reply), 4)])
    assert calls == [] and "tool_response" not in shown + rest
    assert (shown + rest).strip() == "I created it."
