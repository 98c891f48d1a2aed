"""JSON replies: the tool-call format for chat templates that know no tools.

A template without tools gives the model no markup of its own to call one in. In this format
(llama.cpp's "generic" one) every reply is a single JSON object, held to that shape by a grammar
from its first token: ``{"tool_call": {"name": …, "arguments": {…}}}`` to call an offered tool,
or ``{"response": "…"}`` to answer. A model too small to remember a markup still writes a call
that parses, of a tool that exists, with arguments that fit its schema.

The user never sees the JSON: the answer's string is decoded as it streams, and a call is turned
into the ``<tool_call>`` markup the reply parser reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from functools import lru_cache
from typing import Any

from tui_agent.agent.grammar import call_schema, json_gbnf
from tui_agent.agent.tool_calls import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from tui_agent.engine.generation import TurnStats
from tui_agent.tools.base import ToolSpec

CALL_KEY, ANSWER_KEY = "tool_call", "response"
JSON_FORMAT_INSTRUCTION = (
    f'Reply with one JSON object: {{"{CALL_KEY}": {{"name": "<tool name>", "arguments": {{…}}}}}}'
    f' to call a tool, or {{"{ANSWER_KEY}": "<your answer>"}} to answer the user.'
)
ANSWER_ONLY_INSTRUCTION = f'Reply with one JSON object: {{"{ANSWER_KEY}": "<your answer>"}}.'


def reply_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """A call of one of the tools, or an answer; only an answer when no tools are offered."""
    answer = {
        "type": "object",
        "properties": {ANSWER_KEY: {"type": "string"}},
        "required": [ANSWER_KEY],
    }
    if not tools:
        return answer
    call = {
        "type": "object",
        "properties": {CALL_KEY: call_schema(tools)},
        "required": [CALL_KEY],
    }
    return {"anyOf": [call, answer]}


def json_reply_grammar(tools: list[ToolSpec]) -> str | None:
    """The GBNF grammar for a whole reply; None when a schema is beyond llama.cpp's converter."""
    schemas = tuple((t.name, json.dumps(t.input_schema, sort_keys=True)) for t in tools)
    return _compiled(schemas)


@lru_cache(maxsize=16)
def _compiled(schemas: tuple[tuple[str, str], ...]) -> str | None:
    tools = [ToolSpec(name, "", json.loads(schema)) for name, schema in schemas]
    try:
        return json_gbnf(reply_schema(tools))
    except Exception:  # an unsupported schema construct: the reply runs without a grammar
        return None


def as_json_reply(content: str, calls: list[tuple[str, dict[str, Any]]]) -> str:
    """How an earlier assistant turn is shown to the model: as it would have written it."""
    if calls:
        # One call a reply in this format; a turn from another format with several shows each.
        return "\n".join(
            json.dumps({CALL_KEY: {"name": name, "arguments": args}}, ensure_ascii=False)
            for name, args in calls
        )
    return json.dumps({ANSWER_KEY: content}, ensure_ascii=False)


# The reply's opening: which of the two it is, up to the answer's opening quote.
_OPENING = re.compile(r'\s*\{\s*"(?:(?P<call>' + CALL_KEY + r')"\s*:|' + ANSWER_KEY + r'"\s*:\s*")')


def unwrap_json_reply(
    raw: Generator[str, None, TurnStats],
) -> Generator[str, None, TurnStats]:
    """The text of a JSON reply as it streams: an answer's string, decoded piece by piece, or a
    call in ``<tool_call>`` markup once it is complete. Text that does not open either (no
    grammar held the model) is passed on whole at the end, to be read as any reply is."""
    head, kind = "", ""
    answer = _StringDecoder()
    call = ""
    while True:
        try:
            piece = next(raw)
        except StopIteration as done:
            stats: TurnStats = done.value
            break
        if kind == ANSWER_KEY:
            yield answer.feed(piece)
        elif kind == CALL_KEY:
            call += piece
        else:
            head += piece
            opening = _OPENING.match(head)
            if opening is None:
                continue
            kind, rest = (CALL_KEY if opening["call"] else ANSWER_KEY), head[opening.end() :]
            if kind == ANSWER_KEY:
                yield answer.feed(rest)
            else:
                call = rest
    if kind == CALL_KEY:
        yield TOOL_CALL_OPEN + _call_markup(call)
    elif not kind:
        yield head
    return stats


def _call_markup(text: str) -> str:
    """A complete call as the parser reads it; a cut-off one left unclosed (reported as such)."""
    try:
        value, _ = json.JSONDecoder().raw_decode(text.strip())
    except ValueError:
        return text.strip()
    return json.dumps(value, ensure_ascii=False) + TOOL_CALL_CLOSE


class _StringDecoder:
    """Decode a JSON string's body as it arrives, up to its closing quote. An escape split
    between pieces (``\\u00`` … ``e9``; a surrogate pair) waits for the rest of it."""

    def __init__(self) -> None:
        self._raw = ""
        self._closed = False

    def feed(self, piece: str) -> str:
        if self._closed:
            return ""
        self._raw += piece
        end = 0  # how much of the raw text decodes completely
        i, n = 0, len(self._raw)
        while i < n:
            char = self._raw[i]
            if char == '"':
                self._closed = True
                break
            if char != "\\":
                i += 1
            elif i + 1 >= n:
                break
            elif self._raw[i + 1] != "u":
                i += 2
            elif i + 6 > n:
                break
            elif 0xD800 <= _hex(self._raw[i + 2 : i + 6]) < 0xDC00:  # needs its low half
                if i + 12 > n:
                    break
                i += 12
            else:
                i += 6
            end = i
        if self._closed:
            end = i
        text = _decode(self._raw[:end])
        self._raw = self._raw[end:]
        return text


def _hex(digits: str) -> int:
    try:
        return int(digits, 16)
    except ValueError:
        return 0


def _decode(body: str) -> str:
    if not body:
        return ""
    try:
        text: str = json.loads(f'"{body}"', strict=False)
    except ValueError:  # a malformed escape (no grammar held the model): keep the text as is
        return body
    # A lone surrogate (\ud800 without its pair) cannot be printed or saved as UTF-8.
    return text.encode("utf-8", "replace").decode("utf-8")
