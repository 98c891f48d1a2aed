"""Find tool calls in what a local model wrote.

Families people run locally write calls differently:

- Hermes / Qwen 2.5: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
- Qwen3-Coder: ``<tool_call><function=NAME><parameter=KEY>VALUE</parameter></function></tool_call>``
- Llama 3.x: ``<|python_tag|>{"name": ..., "parameters": {...}}`` or the bare JSON object
- Llama 3.1 built-in style: ``<function=NAME>{"arg": ...}</function>``
- Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]`` or ``[TOOL_CALLS]NAME[ARGS]{...}``
- Phi-4 / Granite: ``<|tool_call|>[{"name": ..., "arguments": {...}}]`` (closed by
  ``<|/tool_call|>`` on Phi-4, unclosed on Granite)
- Gemma 3: ``` ```tool_code\nNAME(arg=1)\n``` ```; LFM2: ``<|tool_call_start|>[NAME(arg=1)]``
  ``<|tool_call_end|>`` (Python call syntax, literal arguments only, read with ``ast``)
- anything else: a reply that starts with a JSON object (or list) with a "name" key, or that is
  only a Python-style list of calls.

Small models mix these up, so every syntax is tried whatever the template says; the template's
family is what `models check` reports. Parsing never raises: a call that cannot be read becomes a
``MalformedCall`` whose error is sent back to the model.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
MISTRAL_TAG = "[TOOL_CALLS]"
FUNCTION_OPEN = "<function="
PIPE_CALL_OPEN, PIPE_CALL_CLOSE = "<|tool_call|>", "<|/tool_call|>"
LFM_CALL_OPEN, LFM_CALL_CLOSE = "<|tool_call_start|>", "<|tool_call_end|>"
TOOL_CODE_OPEN = "```tool_code"
# A result echoed back, as the model was shown results: <tool_response name='…'> or bare.
TOOL_RESPONSE_OPEN = "<tool_response"
_ECHO = re.compile(r"<tool_response[^>]*>(?P<body>.*?)(?:</tool_response>|$)", re.S)
MARKERS = (
    TOOL_CALL_OPEN,
    PYTHON_TAG,
    MISTRAL_TAG,
    FUNCTION_OPEN,
    PIPE_CALL_OPEN,
    LFM_CALL_OPEN,
    TOOL_CODE_OPEN,
    TOOL_RESPONSE_OPEN,  # not a call, but an echo of a result: held, then dropped
)
# Special tokens the model's text keeps (others are dropped when detokenizing): the markup that
# tool calls and reasoning are written in, which some vocabularies hold as control tokens.
PRESERVED_TOKENS = frozenset(
    {
        TOOL_CALL_OPEN,
        TOOL_CALL_CLOSE,
        PYTHON_TAG,
        MISTRAL_TAG,
        "[ARGS]",
        "[CALL_ID]",
        PIPE_CALL_OPEN,
        PIPE_CALL_CLOSE,
        LFM_CALL_OPEN,
        LFM_CALL_CLOSE,
        "<think>",
        "</think>",
    }
)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class MalformedCall:
    raw: str
    error: str
    name: str = ""


@dataclass
class ParsedReply:
    text: str
    calls: list[ParsedCall | MalformedCall] = field(default_factory=list)
    # What the model wrote between <think> and </think> (Qwen3, DeepSeek-R1 and others).
    reasoning: str = ""


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def opens_reasoning(prompt: str) -> bool:
    """Whether a prompt leaves the model inside <think> (Qwen3's generation prompt can)."""
    return prompt.rstrip().endswith(THINK_OPEN)


def detect_family(template: str) -> str:
    """The tool-call markup a chat template writes: hermes | qwen3_coder | llama3 | mistral |
    phi4 | granite | lfm2 | gemma | json."""
    if FUNCTION_OPEN in template and "<parameter=" in template:
        return "qwen3_coder"
    if TOOL_CALL_OPEN in template:
        return "hermes"
    if MISTRAL_TAG in template:
        return "mistral"
    if PYTHON_TAG in template or "ipython" in template:
        return "llama3"
    if PIPE_CALL_CLOSE in template:
        return "phi4"
    if PIPE_CALL_OPEN in template:
        return "granite"
    if LFM_CALL_OPEN in template:
        return "lfm2"
    if "tool_code" in template or "<start_of_turn>" in template:
        return "gemma"
    return "json"


def parse_reply(text: str) -> ParsedReply:
    """Split a reply into its text and its tool calls. Never raises. A tool result the model
    echoes (``<tool_response>…``) is not part of its text."""
    reply = _parse_calls(text)
    if TOOL_RESPONSE_OPEN in reply.text:
        if not reply.calls and (misplaced := _call_in_echo(reply.text)) is not None:
            return misplaced
        reply.text = without_echoes(reply.text).strip()
    return reply


def _call_in_echo(text: str) -> ParsedReply | None:
    """A call written inside <tool_response> tags (small models mix the two tags up when the
    prompt names both). Only a whole call counts: a name and its arguments, as a result that
    happens to hold a "name" is not one."""
    for echo in _ECHO.finditer(text):
        body = echo["body"].strip()
        values, _ = _json_values(body, limit=1) if body.startswith("{") else ([], "")
        if values and _looks_like_call(values[0]) and _ARGUMENT_KEYS & set(values[0]):
            return ParsedReply(without_echoes(text).strip(), [_call_from_value(values[0])])
    return None


_ARGUMENT_KEYS = frozenset({"arguments", "parameters"})


def without_echoes(text: str) -> str:
    return _ECHO.sub("", text)


def _parse_calls(text: str) -> ParsedReply:
    for parse in (
        _parse_tagged,
        _parse_mistral,
        _parse_python_tag,
        _parse_pipe_tagged,
        _parse_lfm,
        _parse_tool_code,
        _parse_bare_functions,
    ):
        reply = parse(text)
        if reply is not None:
            return reply
    return (
        _parse_json_reply(text)
        or _parse_fenced_call(text)
        or _parse_pythonic_reply(text)
        or ParsedReply(text.strip())
    )


_FENCE = re.compile(r"```(?:json)?[ \t]*\n?(?P<body>.*?)(?:```|$)", re.S)


def _parse_fenced_call(text: str) -> ParsedReply | None:
    """A JSON call in a ```json fence after some text ("I will check:" then the call)."""
    for match in _FENCE.finditer(text):
        body = match["body"].strip()
        values, _ = _json_values(body, limit=1) if body.startswith(("{", "[")) else ([], "")
        items = values[0] if values and isinstance(values[0], list) else values
        if items and all(_looks_like_call(item) for item in items):
            outside = [text[: match.start()], text[match.end() :]]
            return ParsedReply(_join(outside), [_call_from_value(item) for item in items])
    return None


def _parse_pipe_tagged(text: str) -> ParsedReply | None:
    """Phi-4 ``<|tool_call|>[…]<|/tool_call|>`` and Granite's unclosed ``<|tool_call|>[…]``."""
    if PIPE_CALL_OPEN not in text:
        return None
    before, _, rest = text.partition(PIPE_CALL_OPEN)
    body, _, after = rest.partition(PIPE_CALL_CLOSE)
    values, error = _json_values(_strip_fence(body.strip()), limit=1)
    calls: list[ParsedCall | MalformedCall] = [
        _call_from_value(v)
        for value in values
        for v in (value if isinstance(value, list) else [value])
    ]
    if error or not calls:
        calls.append(MalformedCall(body.strip(), error or f"no JSON after {PIPE_CALL_OPEN}"))
    return ParsedReply(_join([before, after]), calls)


def _parse_lfm(text: str) -> ParsedReply | None:
    if LFM_CALL_OPEN not in text:
        return None
    before, _, rest = text.partition(LFM_CALL_OPEN)
    body, _, after = rest.partition(LFM_CALL_CLOSE)
    return ParsedReply(_join([before, after]), _pythonic_calls(body))


def _parse_tool_code(text: str) -> ParsedReply | None:
    if TOOL_CODE_OPEN not in text:
        return None
    before, _, rest = text.partition(TOOL_CODE_OPEN)
    body, _, after = rest.partition("```")
    return ParsedReply(_join([before, after]), _pythonic_calls(body))


def _parse_pythonic_reply(text: str) -> ParsedReply | None:
    """A reply that is only ``[name(arg=1), …]`` (LFM2 and Llama 3.2 without their tags)."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith(")]")):
        return None
    calls = _pythonic_calls(body)
    if any(isinstance(c, MalformedCall) for c in calls):
        return None
    return ParsedReply("", calls)


def _pythonic_calls(body: str) -> list[ParsedCall | MalformedCall]:
    """Calls written as Python: ``name(a=1)`` or ``[a(x=1), b()]``; arguments must be literals
    (read with ``ast.literal_eval``, nothing is ever executed)."""
    source = body.strip()
    try:
        tree = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return [MalformedCall(source, f"not a Python call: {exc}", _guess_python_name(source))]
    nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
    calls: list[ParsedCall | MalformedCall] = []
    for node in nodes:
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name | ast.Attribute):
            calls.append(MalformedCall(source, "expected name(argument=value, …)"))
            continue
        name = ast.unparse(node.func)
        if node.args:
            calls.append(MalformedCall(source, "arguments must be given by name", name))
            continue
        try:
            arguments = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            calls.append(MalformedCall(source, "argument values must be literals", name))
            continue
        calls.append(ParsedCall(name, arguments))
    return calls or [MalformedCall(source, "no call found")]


def _guess_python_name(source: str) -> str:
    match = re.match(r"\[?\s*([\w.]+)\(", source)
    return match.group(1) if match else ""


def _parse_tagged(text: str) -> ParsedReply | None:
    if TOOL_CALL_OPEN not in text:
        return None
    calls: list[ParsedCall | MalformedCall] = []
    outside: list[str] = []
    position = 0
    while (start := text.find(TOOL_CALL_OPEN, position)) != -1:
        outside.append(text[position:start])
        body_start = start + len(TOOL_CALL_OPEN)
        end = text.find(TOOL_CALL_CLOSE, body_start)
        # A model may stop before writing the closing tag: the call runs to the end.
        body = text[body_start:] if end == -1 else text[body_start:end]
        position = len(text) if end == -1 else end + len(TOOL_CALL_CLOSE)
        body = body.strip()
        calls.extend(
            _parse_functions(body)
            if body.startswith(FUNCTION_OPEN)
            else [_call_from_json_text(body)]
        )
    outside.append(text[position:])
    return ParsedReply(_join(outside), calls)


_FUNCTION = re.compile(r"<function=([^>\s]+)>(.*?)(?:</function>|$)", re.S)
_PARAMETER = re.compile(r"<parameter=([^>\s]+)>(.*?)(?:</parameter>|(?=<parameter=)|$)", re.S)


def _parse_functions(body: str) -> list[ParsedCall | MalformedCall]:
    calls: list[ParsedCall | MalformedCall] = []
    for match in _FUNCTION.finditer(body):
        inner = match.group(2).strip()
        if inner.startswith("{"):  # Llama 3.1: <function=NAME>{"arg": …}</function>
            values, error = _json_values(inner, limit=1)
            if values and isinstance(values[0], dict):
                calls.append(ParsedCall(match.group(1), values[0]))
            else:
                calls.append(MalformedCall(inner, error or "arguments are not a JSON object"))
            continue
        arguments = {key: _xml_value(value) for key, value in _PARAMETER.findall(match.group(2))}
        calls.append(ParsedCall(match.group(1), arguments))
    return calls or [MalformedCall(body, "could not read a <function=NAME> block", "")]


def _xml_value(raw: str) -> Any:
    value = raw.strip("\n")
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_bare_functions(text: str) -> ParsedReply | None:
    if FUNCTION_OPEN not in text:
        return None
    start = text.find(FUNCTION_OPEN)
    return ParsedReply(text[:start].strip(), _parse_functions(text[start:]))


def _parse_python_tag(text: str) -> ParsedReply | None:
    if PYTHON_TAG not in text:
        return None
    before, _, rest = text.partition(PYTHON_TAG)
    objects, error = _json_values(rest.replace(";", " "))
    calls: list[ParsedCall | MalformedCall] = [_call_from_value(obj) for obj in objects]
    if error or not calls:
        calls.append(MalformedCall(rest.strip(), error or "no JSON object after <|python_tag|>"))
    return ParsedReply(before.strip(), calls)


_MISTRAL_ARGS = re.compile(r"\s*([\w.-]+)\s*\[ARGS\]")


def _parse_mistral(text: str) -> ParsedReply | None:
    if MISTRAL_TAG not in text:
        return None
    parts = text.split(MISTRAL_TAG)
    calls: list[ParsedCall | MalformedCall] = []
    for segment in parts[1:]:
        named = _MISTRAL_ARGS.match(segment)
        if named:
            values, error = _json_values(segment[named.end() :], limit=1)
            if values and isinstance(values[0], dict):
                calls.append(ParsedCall(named.group(1), values[0]))
            else:
                calls.append(
                    MalformedCall(
                        segment.strip(), error or "arguments are not a JSON object", named.group(1)
                    )
                )
            continue
        values, error = _json_values(segment, limit=1)
        if not values:
            calls.append(MalformedCall(segment.strip(), error or f"no JSON after {MISTRAL_TAG}"))
        for value in values:
            calls.extend(
                _call_from_value(v) for v in (value if isinstance(value, list) else [value])
            )
    return ParsedReply(parts[0].strip(), calls)


def _parse_json_reply(text: str) -> ParsedReply | None:
    """The fallback: the reply starts with a JSON tool call (maybe in a ```json fence).

    Only the first JSON value counts: small models follow a call with an echoed
    ``<tool_response>`` or more calls of their own invention, which are dropped.
    """
    body = _strip_fence(text.strip())
    if body.startswith("{{"):  # a doubled brace, as small models write after a template's {{ }}
        body = body[1:]
    if not body.startswith(("{", "[")):
        return None
    values, _ = _json_values(body, limit=1)
    if not values:
        return None
    items = values[0] if isinstance(values[0], list) else [values[0]]
    if not items or not all(_looks_like_call(i) for i in items):
        return None
    return ParsedReply("", [_call_from_value(item) for item in items])


def _looks_like_call(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    function = value.get("function")
    inner: dict[str, Any] = function if isinstance(function, dict) else value
    return isinstance(inner.get("name"), str)


def _strip_fence(text: str) -> str:
    match = re.match(r"```(?:json)?\s*(.*?)\s*(?:```|$)", text, re.S)
    return match.group(1) if match else text


def _json_values(text: str, limit: int | None = None) -> tuple[list[Any], str]:
    """JSON values one after another; returns what was read and an error for what was not."""
    values: list[Any] = []
    position = 0
    while limit is None or len(values) < limit:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            break
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            return values, f"invalid JSON: {exc.msg} at character {exc.pos - position}"
        values.append(value)
    return values, ""


def _call_from_json_text(body: str) -> ParsedCall | MalformedCall:
    values, error = _json_values(_strip_fence(body), limit=1)
    if error or not values:
        return MalformedCall(body, error or "empty tool call", _guess_name(body))
    return _call_from_value(values[0])


def _call_from_value(value: Any) -> ParsedCall | MalformedCall:
    raw = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    if not isinstance(value, dict):
        return MalformedCall(
            raw, 'a tool call must be a JSON object like {"name": ..., "arguments": {...}}'
        )
    if isinstance(value.get("function"), dict):  # OpenAI shape
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return MalformedCall(raw, 'the tool call has no "name"')
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return MalformedCall(raw, "the arguments are a string that is not valid JSON", name)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return MalformedCall(raw, "the arguments must be a JSON object", name)
    return ParsedCall(name, arguments)


def _guess_name(body: str) -> str:
    match = re.search(r'"name"\s*:\s*"([^"]+)"', body)
    return match.group(1) if match else ""


def _join(parts: list[str]) -> str:
    return "\n".join(p.strip() for p in parts if p.strip())


class ReplySplitter:
    """Decide, while tokens stream, which text the user may see now, and which is reasoning.

    A reply that opens with ``<think>`` (or whose prompt opened it) streams its reasoning first,
    through ``feed``'s second value. Then text before the first tool-call marker is released as it
    comes (minus a tail that could be the start of a marker). From a marker on, nothing more is
    shown until the reply is complete. A reply that starts with ``{`` or ``[`` (or a fence around
    one) is held whole: it may be a bare JSON tool call.
    """

    def __init__(self, thinking: bool = False) -> None:
        self.buffer = ""
        self.released = ""
        self.reasoning = ""
        self.thinking = thinking
        self._head = ""  # the reply before the answer: reasoning, or not yet known to be
        self._decided = thinking
        self._after_reasoning = False
        self._in_call = False
        self._json_mode: bool | None = None

    def feed(self, piece: str) -> tuple[str, str]:
        """(text to show now, reasoning to show now)."""
        if self._decided and not self.thinking:
            if self._after_reasoning:  # the blank lines between </think> and the answer
                piece = piece.lstrip()
                self._after_reasoning = not piece
            return self._feed_answer(piece), ""
        self._head += piece
        if not self._decided:
            start = self._head.lstrip()
            if THINK_OPEN.startswith(start):
                return "", ""  # may still become <think>
            self._decided = True
            if not start.startswith(THINK_OPEN):
                head, self._head = self._head, ""
                return self._feed_answer(head), ""
            self.thinking = True
            self._head = start[len(THINK_OPEN) :]
        # Only the part after what was released can hold </think>: the search per token stays
        # short however long the reasoning grows.
        close = self._head.find(THINK_CLOSE, len(self.reasoning))
        if close != -1:
            self.thinking, self._after_reasoning = False, True
            new = self._head[len(self.reasoning) : close]
            self.reasoning += new
            return self.feed(self._head[close + len(THINK_CLOSE) :])[0], new
        tail = self._head[len(self.reasoning) :]
        new = tail[: len(tail) - _partial_length(tail, (THINK_CLOSE,))]
        self.reasoning += new
        return "", new

    def _feed_answer(self, piece: str) -> str:
        self.buffer += piece
        if self._in_call:
            return ""
        if self._json_mode is None:
            self._json_mode = _held_whole(self.buffer.lstrip())
            if self._json_mode is None:
                return ""
        if self._json_mode:
            return ""
        # Released text holds no marker, so only the unreleased tail needs searching: the work per
        # token stays constant instead of growing with the reply.
        start = len(self.released)
        hits = [i for i in (self.buffer.find(m, start) for m in MARKERS) if i != -1]
        json_fence = _JSON_FENCE.search(self.buffer, start)
        if json_fence:  # a fence around JSON may be a call: held whole until the reply ends
            hits.append(json_fence.start())
        if hits:
            self._in_call = True
            return self._release_to(min(hits))
        tail = self.buffer[start:]
        held = max(_partial_marker_length(tail), _open_fence_length(tail))
        return self._release_to(len(self.buffer) - held)

    def finish(self) -> tuple[ParsedReply, str]:
        """Parse the whole reply; also return the text not released yet. A reply whose
        reasoning was never closed has no answer: all of it is reasoning."""
        if not self._decided:  # the whole reply was a prefix of "<think>"
            self._decided, head, self._head = True, self._head, ""
            self._feed_answer(head)
        reply = parse_reply(self.buffer)
        reply.reasoning = (self._head if self.thinking else self.reasoning).strip()
        shown = self.released.strip()
        if not reply.calls:  # held text (a fence, a marker) that held no call after all
            return reply, without_echoes(self.buffer[len(self.released) :])
        return reply, reply.text[len(shown) :] if reply.text.startswith(shown) else ""

    @property
    def unreleased_reasoning(self) -> str:
        """Reasoning held back at the end (a tail that looked like the start of </think>)."""
        return self._head[len(self.reasoning) :] if self.thinking else ""

    def _release_to(self, end: int) -> str:
        new = self.buffer[len(self.released) : max(end, len(self.released))]
        self.released += new
        return new


def _held_whole(start: str) -> bool | None:
    """Whether a reply beginning with ``start`` may be a bare JSON call, so nothing of it is
    shown until it is complete: it opens with ``{`` or ``[``, or with a fence whose body does.
    None while the start is too short to tell."""
    if not start:
        return None
    if start[0] in "{[":
        return True
    if not start.startswith("```"):
        return None if "```".startswith(start) else False
    _, newline, body = start.partition("\n")
    body = body.lstrip()
    return body[0] in "{[" if newline and body else None


_JSON_FENCE = re.compile(r"```(?:json)?[ \t]*\n\s*[{\[]")
# The end of a text that opens a fence whose body has not started yet ("```", "```json\n  ").
_OPEN_FENCE = re.compile(r"```(?:j(?:s(?:o(?:n)?)?)?)?[ \t]*\n?\s*$")


def _open_fence_length(text: str) -> int:
    match = _OPEN_FENCE.search(text)
    return len(text) - match.start() if match else 0


def _partial_marker_length(text: str) -> int:
    """Length of the longest tail of text that is a proper prefix of a marker."""
    return _partial_length(text, MARKERS)


def _partial_length(text: str, markers: tuple[str, ...]) -> int:
    best = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:size]):
                best = size
                break
    return best
