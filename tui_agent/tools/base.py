"""What the agent loop knows about tools: specs, calls, outcomes and the executor it calls.

The loop depends on this module only; the MCP hub, the built-in tools and the permission gate
live behind ``ToolExecutor.execute``, the single entry point every tool call goes through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tui_agent.events import EventSink, PermissionDecision, PermissionRequest


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    # MCP semantics: unannotated tools are treated as destructive and not read-only.
    read_only: bool = False
    destructive: bool = True
    server: str = "builtin"

    def for_template(self) -> dict[str, Any]:
        """The OpenAI-style definition chat templates expect in ``tools``."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": without_titles(self.input_schema),
            },
        }


def without_titles(schema: Any) -> Any:
    """A JSON schema without its "title" keys: generated titles ("Path", "read_fileArguments")
    repeat the property names and cost prompt tokens on every turn."""
    if isinstance(schema, dict):
        return {
            k: without_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [without_titles(v) for v in schema]
    return schema


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    success: bool
    output: str
    denied: bool = False


@dataclass
class CallContext:
    """What a tool call may use from the loop: events, the cancel flag and the user's answer."""

    emit: EventSink
    cancelled: Callable[[], bool]
    ask: Callable[[PermissionRequest], PermissionDecision]


class ToolExecutor(Protocol):
    def specs(self) -> list[ToolSpec]: ...

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome: ...


class NoTools:
    """The executor for a chat without tools."""

    def specs(self) -> list[ToolSpec]:
        return []

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        return ToolOutcome(False, f"no tools are available; {call.name!r} cannot be called")


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def argument_errors(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Top-level checks a small model most often gets wrong: missing, unknown and mistyped keys."""
    properties: dict[str, Any] = schema.get("properties") or {}
    problems = [
        f"missing required argument {name!r}"
        for name in schema.get("required", [])
        if name not in arguments
    ]
    if schema.get("additionalProperties") is False:
        problems += [f"unknown argument {name!r}" for name in arguments if name not in properties]
    for name, value in arguments.items():
        expected = (properties.get(name) or {}).get("type")
        names = expected if isinstance(expected, list) else [expected] if expected else []
        types = tuple(t for n in names for t in _JSON_TYPES.get(n, ()))
        if not types:
            continue
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            problems.append(
                f"argument {name!r} should be {' or '.join(names)}, got {type(value).__name__}"
            )
    return problems
