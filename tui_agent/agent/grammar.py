"""Grammars that hold a small model to a well-formed call of a tool it was offered.

Grammars are GBNF text, which llama.cpp takes in-process and llama-server over HTTP alike.
A *forced* grammar makes the whole reply one call (``--force-tool``). A *lazy* grammar is what
llama.cpp's chat code does: the model writes freely until it opens a call (the family's trigger:
``<tool_call>``, ``[TOOL_CALLS]``, ``<|python_tag|>``, ``<|tool_call|>``, or a reply that starts
``{"name": "``), then generation restarts from that point with a grammar that only admits a call
of an offered tool with arguments that fit its schema, closed as the family closes it. Text
without a trigger is sampled exactly as without tools, so plain answers cost nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tui_agent.agent.tool_calls import (
    MISTRAL_TAG,
    PIPE_CALL_OPEN,
    PYTHON_TAG,
    THINK_CLOSE,
    THINK_OPEN,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
)
from tui_agent.engine.generation import TurnStats, collect
from tui_agent.tools.base import ToolSpec

# Whitespace allowed between a trigger and the call; bounded, so a model cannot loop on it.
_WS = "[ \\n]? [ \\n]?"
# The start of a reply that may be a bare (or fenced) JSON call, whitespace removed: held back
# until the tool's name is written out.
_BARE_STARTS = ('{"name":"', '{{"name":"', '```json{"name":"', '```{"name":"')


@dataclass(frozen=True)
class Trigger:
    """Where a call starts in the text so far, and the grammar for what follows."""

    resume_at: int  # generation restarts from text[:resume_at]
    wrapper: str  # how the call is wrapped after that point (a GBNF root over `call`)
    arguments_key: str = "arguments"


def family_trigger(family: str, template: str) -> tuple[str, str, str] | None:
    """(trigger text, GBNF root after it, the arguments key) for a family's tagged calls."""
    if family == "hermes":
        return TOOL_CALL_OPEN, f'{_WS} call {_WS} "{TOOL_CALL_CLOSE}"', "arguments"
    if family == "mistral" and "[ARGS]" not in template:  # v11's NAME[ARGS]{…} runs without
        return MISTRAL_TAG, '"[" call "]"', "arguments"
    if family == "llama3":
        return PYTHON_TAG, "call", "parameters"
    if family in ("phi4", "granite"):
        return PIPE_CALL_OPEN, '"[" call "]"', "arguments"
    return None  # Python-style (Gemma, LFM2) and XML (Qwen3-Coder) calls run without one


# A JSON call with the name written out: at the reply's start (bare, maybe with a doubled brace)
# or in a ```json fence anywhere. The name must be an offered tool's, so JSON the user asked for
# ({"name": "John", ...}) is never forced into a call.
_JSON_CALL = re.compile(
    r'(?P<fence>```(?:json)?[ \t]*\n?\s*)?\{?(?P<brace>\{)\s*"name"\s*:\s*"(?P<name>[^"]*)"'
)


def find_trigger(
    text: str,
    family: str,
    template: str,
    names: frozenset[str],
    since: int = 0,
    floor: int = 0,
) -> Trigger | None:
    """The call that ``text`` (the reply so far) has opened, if it has; text before ``since``
    was searched already (a trigger there would have been found then), and nothing before
    ``floor`` (the end of the reasoning) can be one."""
    tagged = family_trigger(family, template)
    if tagged is not None:
        marker, wrapper, key = tagged
        at = text.find(marker, max(since - len(marker), floor))
        if at != -1:
            return Trigger(at + len(marker), wrapper, key)
    leading = _LEADING_SPACE.match(text)
    start = leading.end() if leading else 0
    for match in _JSON_CALL.finditer(text, max(since - 80, floor)):
        fenced = match["fence"] is not None
        if match["name"] in names and (fenced or match.start() == start):
            wrapper = f'call {_WS} "```"' if fenced else "call"
            return Trigger(match.start("brace"), wrapper)
    return None


# generate(text after the prompt, GBNF grammar, max tokens, stop) streams a completion from there.
Generate = Callable[[str, str | None, int, Callable[[], bool]], Generator[str, None, TurnStats]]


def lazy_stream(
    generate: Generate,
    tools: list[ToolSpec],
    family: str,
    template: str,
    max_tokens: int,
    should_stop: Callable[[], bool],
    thinking: bool = False,
) -> Generator[str, None, TurnStats]:
    """Stream a reply; when it opens a call, restart from that point under the call's grammar.

    Text is passed on as it comes, except the start of a reply that may be a bare JSON call,
    which is held until that is decided (the restart drops what followed the trigger). Inside
    reasoning (``<think>`` not closed yet; ``thinking``: the prompt opened it) nothing triggers:
    a model that plans a call there has not made it.
    """
    names = frozenset(t.name for t in tools)
    switching = False
    first = generate("", None, max_tokens, lambda: switching or should_stop())
    text, shown, bare = "", 0, True
    # Whether the reply is inside reasoning: True, False, or None while too short to tell; and
    # where the reasoning ended (triggers before that point were only planned).
    reasoning: bool | None = True if thinking else None
    floor = 0
    while True:
        try:
            piece = next(first)
        except StopIteration as done:
            if shown < len(text):
                yield text[shown:]
            return done.value  # type: ignore[no-any-return]
        searched, text = len(text), text + piece
        if reasoning is None:  # not known yet whether the reply opens with <think>
            head = text.lstrip()
            if len(head) >= len(THINK_OPEN) or not THINK_OPEN.startswith(head):
                reasoning = head.startswith(THINK_OPEN)
        if reasoning is not False:
            since = max(searched - len(THINK_CLOSE), 0)
            closed = -1 if reasoning is None else text.find(THINK_CLOSE, since)
            if closed == -1:  # reasoning (or maybe about to be): passed on, never a trigger
                yield text[shown:]
                shown = len(text)
                continue
            floor, reasoning = closed + len(THINK_CLOSE), False
        trigger = find_trigger(text, family, template, names, searched, floor)
        grammar = lazy_grammar(tools, trigger) if trigger is not None else None
        if trigger is not None and grammar is not None:
            switching = True
            _, before = collect(first)  # it stops at once: its stop check is true now
            if should_stop() or before.generated_tokens >= max_tokens:
                yield text[shown:]
                before.finish_reason = "cancelled" if should_stop() else "length"
                return before
            if shown < trigger.resume_at:
                yield text[shown : trigger.resume_at]
            budget = max_tokens - before.generated_tokens
            after = yield from generate(text[: trigger.resume_at], grammar, budget, should_stop)
            return _joined(before, after)
        bare = bare and may_open_bare_call(text)
        held = 0 if bare else _fence_that_may_open_a_call(text)
        if held > shown:
            yield text[shown:held]
            shown = held


def _joined(before: TurnStats, after: TurnStats) -> TurnStats:
    return TurnStats(
        prompt_tokens=before.prompt_tokens,
        cached_tokens=before.cached_tokens,
        generated_tokens=before.generated_tokens + after.generated_tokens,
        time_to_first_token=before.time_to_first_token,
        generation_seconds=before.generation_seconds + after.generation_seconds,
        finish_reason=after.finish_reason,
    )


def _optional_chain(parts: list[str]) -> str:
    """A regex matching any prefix of the parts in order (each only after all before it)."""
    regex = ""
    for part in reversed(parts):
        regex = f"(?:{part}{regex})?"
    return regex


_LEADING_SPACE = re.compile(r"\s*")
# How far back from the end a fence that may still open a call can start (a name is shorter).
_FENCE_REACH = 256
# The start of a ```json fence around a call, up to the tool's name while it is being written.
_FENCED_CALL_PREFIX = re.compile(
    "```"
    + _optional_chain(["j", "s", "o", "n"])
    + r"[ \t]*"
    + _optional_chain(
        [r"\n\s*", r"\{\s*\{?\s*", '"', "n", "a", "m", "e", r'"\s*', r":\s*", '"[^"]*']
    )
    + "$"
)


def _fence_that_may_open_a_call(text: str) -> int:
    """Where the text can be passed on up to: the start of a fence that may still turn out to
    hold a call (the restart would repeat what was passed on), else the end. Only the end of the
    text can be such a fence, so only the end is searched (this runs for every piece)."""
    fence = text.rfind("```", max(len(text) - _FENCE_REACH, 0))
    return fence if fence != -1 and _FENCED_CALL_PREFIX.match(text, fence) else len(text)


def may_open_bare_call(text: str) -> bool:
    """Whether the reply so far could still turn out to start a bare JSON call (hold it back)."""
    squeezed = "".join(text.split())
    return any(
        start.startswith(squeezed)
        # the tool's name is still being written
        or (squeezed.startswith(start) and '"' not in squeezed[len(start) :])
        for start in _BARE_STARTS
    )


def call_schema(tools: list[ToolSpec], arguments_key: str = "arguments") -> dict[str, Any]:
    """A JSON schema that only admits a call of one of the tools with valid arguments."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, arguments_key: t.input_schema},
            "required": ["name", arguments_key],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


# llama-cpp-python's converter lets a string hold raw control characters (a newline), which
# JSON forbids, so a held call could still fail to parse; llama.cpp's own converter excludes them.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def json_gbnf(schema: dict[str, Any], prop_order: list[str] | None = None) -> str:
    """GBNF for JSON that fits the schema, as strict JSON parsers read it (raises when the schema
    is beyond the converter)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = str(json_schema_to_gbnf(json.dumps(schema), prop_order=prop_order))
    return grammar.replace(_LOOSE_CHAR, _JSON_CHAR)


def forced_grammar(tools: list[ToolSpec]) -> str:
    """The grammar for a reply that must be exactly one call (``--force-tool``)."""
    return json_gbnf(call_schema(tools))


def lazy_grammar(tools: list[ToolSpec], trigger: Trigger) -> str | None:
    """The grammar for the rest of a call the model has opened; None when a tool's schema is
    beyond what llama.cpp's converter handles (the call then runs without one)."""
    schemas = tuple((t.name, json.dumps(t.input_schema, sort_keys=True)) for t in tools)
    return _compiled(schemas, trigger.wrapper, trigger.arguments_key)


@lru_cache(maxsize=16)
def _compiled(schemas: tuple[tuple[str, str], ...], wrapper: str, arguments_key: str) -> str | None:
    tools = [ToolSpec(name, "", json.loads(schema)) for name, schema in schemas]
    try:
        call = json_gbnf(call_schema(tools, arguments_key), ["name", arguments_key])
    except Exception:  # an unsupported schema construct: no grammar rather than no call
        return None
    rules = re.sub(r"^root ::=", "call ::=", call, flags=re.M)
    return f"root ::= {wrapper}\n{rules}"
