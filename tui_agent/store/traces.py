"""Traces of turns: a span for the turn, one for each model call and one for each tool call.

``TurnTracer`` builds them from the same events the front ends see (on the worker thread, in
the recorder), and the recorder saves each finished turn's spans as one "trace" entry beside
the session's messages. ``trace_tree`` draws them for `history show --trace`; ``otlp_json``
writes them as OpenTelemetry's JSON (OTLP) with the GenAI semantic conventions' names.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from tui_agent.events import (
    Completed,
    Event,
    IterationStart,
    PermissionRequest,
    PermissionResult,
    ToolResult,
    ToolStart,
    TurnStatistics,
)

Span = dict[str, Any]


class TurnTracer:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._spans: list[Span] = []
        self._turn: Span | None = None
        self._model: Span | None = None
        self._tools: dict[str, Span] = {}

    def observe(self, event: Event) -> list[Span] | None:
        """Follow one event; the turn's spans when it has just finished, else None."""
        now = self._clock()
        if isinstance(event, IterationStart):
            turn = self._turn or self._open_turn(now)
            self._model = self._span("model call", "model", now, turn)
            self._model["attributes"]["iteration"] = event.iteration
        elif isinstance(event, TurnStatistics) and self._model is not None:
            self._end_model(self._model, event, now)
            self._model = None
        elif isinstance(event, ToolStart) and self._turn is not None:
            span = self._span(event.name, "tool", now, self._turn)
            span["attributes"].update(tool=event.name, call_id=event.call_id)
            self._tools[event.call_id] = span
        elif isinstance(event, PermissionRequest | PermissionResult | ToolResult):
            self._tool_event(event, now)
        elif isinstance(event, Completed) and self._turn is not None:
            return self._close_turn(event, now)
        return None

    def _tool_event(
        self, event: PermissionRequest | PermissionResult | ToolResult, now: float
    ) -> None:
        span = self._tools.get(event.call_id)
        if span is None:
            return
        if isinstance(event, PermissionRequest):
            span["attributes"]["asked_at"] = now
        elif isinstance(event, PermissionResult):
            self._decided(span, event, now)
        else:
            outcome = "denied" if event.denied else "ok" if event.success else "failed"
            span["attributes"].update(outcome=outcome, output_chars=len(event.output))
            span["end"] = now
            del self._tools[event.call_id]

    def _open_turn(self, now: float) -> Span:
        self._spans = []
        self._turn = self._span("turn", "turn", now, None)
        return self._turn

    def _span(self, name: str, kind: str, now: float, parent: Span | None) -> Span:
        span: Span = {
            "trace_id": parent["trace_id"] if parent else secrets.token_hex(16),
            "span_id": secrets.token_hex(8),
            "parent_id": parent["span_id"] if parent else "",
            "name": name,
            "kind": kind,
            "start": now,
            "end": None,  # while it runs
            "attributes": {},
        }
        self._spans.append(span)
        return span

    @staticmethod
    def _end_model(span: Span, stats: TurnStatistics, now: float) -> None:
        span["end"] = now
        span["attributes"].update(
            prompt_tokens=stats.prompt_tokens,
            cached_tokens=stats.cached_tokens,
            generated_tokens=stats.generated_tokens,
            time_to_first_token=round(stats.time_to_first_token, 4),
            tokens_per_second=round(stats.tokens_per_second, 2),
            finish_reason=stats.finish_reason,
            restored_tokens=stats.restored_tokens,
            accepted_draft_tokens=stats.accepted_tokens,
        )

    @staticmethod
    def _decided(span: Span, result: PermissionResult, now: float) -> None:
        attributes = span["attributes"]
        attributes.update(
            decision="allowed" if result.allowed else "denied",
            scope=result.scope,
            reason=result.reason,
        )
        asked_at = attributes.pop("asked_at", None)
        if asked_at is not None:  # how long the call waited for the user's answer
            attributes["waited_seconds"] = round(now - asked_at, 3)

    def _close_turn(self, event: Completed, now: float) -> list[Span]:
        turn = self._turn
        assert turn is not None
        for span in self._spans:  # a cancel can leave a call open: it ends with the turn
            if span["end"] is None:
                span["end"] = now
        models = [s for s in self._spans if s["kind"] == "model"]
        turn["attributes"].update(
            reason=event.reason,
            model_calls=len(models),
            tool_calls=sum(s["kind"] == "tool" for s in self._spans),
            prompt_tokens=sum(s["attributes"].get("prompt_tokens", 0) for s in models),
            generated_tokens=sum(s["attributes"].get("generated_tokens", 0) for s in models),
        )
        spans, self._spans, self._turn, self._model, self._tools = self._spans, [], None, None, {}
        return spans


# --- showing them ------------------------------------------------------------------------


def trace_tree(turns: Iterable[list[Span]]) -> list[str]:
    """Each turn as a tree: the turn, then its model and tool calls in order, with timings."""
    lines: list[str] = []
    for number, spans in enumerate(turns, 1):
        turn = next((s for s in spans if s["kind"] == "turn"), None)
        if turn is None:
            continue
        a = turn["attributes"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(turn["start"]))
        lines.append(
            f"turn {number}  {when}  {_seconds(turn)}  {a.get('reason', '')}"
            f"  · {a.get('model_calls', 0)} model call(s), {a.get('tool_calls', 0)} tool call(s)"
        )
        children = sorted((s for s in spans if s is not turn), key=lambda s: s["start"])
        for index, span in enumerate(children):
            branch = "└─" if index == len(children) - 1 else "├─"
            offset = span["start"] - turn["start"]
            lines.append(f"  {branch} +{offset:6.2f}s  {_describe(span)}")
        lines.append("")
    return lines


def _describe(span: Span) -> str:
    a = span["attributes"]
    if span["kind"] == "model":
        cached = f" ({a.get('cached_tokens', 0)} cached)" if a.get("cached_tokens") else ""
        return (
            f"model call {a.get('iteration', '')}  {_seconds(span)}  prompt {a.get('prompt_tokens', 0)}"
            f"{cached} · first token {a.get('time_to_first_token', 0):.2f} s"
            f" · {a.get('generated_tokens', 0)} tokens at {a.get('tokens_per_second', 0):.1f} tok/s"
            f" · {a.get('finish_reason') or '?'}"
        )
    decision = a.get("decision", "")
    scope = f" ({a['scope']})" if a.get("scope") else ""
    waited = f", waited {a['waited_seconds']:.2f} s" if "waited_seconds" in a else ""
    return f"{span['name']}  {_seconds(span)}  {decision}{scope}{waited} · {a.get('outcome', 'unfinished')}"


def _seconds(span: Span) -> str:
    return f"{span['end'] - span['start']:.2f} s"


# --- OpenTelemetry JSON ------------------------------------------------------------------

# Our names → the GenAI semantic conventions' (where there is one).
_OTEL_NAMES = {
    "prompt_tokens": "gen_ai.usage.input_tokens",
    "generated_tokens": "gen_ai.usage.output_tokens",
    "finish_reason": "gen_ai.response.finish_reasons",
    "tool": "gen_ai.tool.name",
    "call_id": "gen_ai.tool.call.id",
}
_OPERATIONS = {"turn": "invoke_agent", "model": "chat", "tool": "execute_tool"}


def otlp_json(session_id: str, model: str, turns: Iterable[list[Span]]) -> dict[str, Any]:
    """The spans as an OTLP/JSON ExportTraceServiceRequest (what an OTLP HTTP collector takes)."""
    spans = [_otlp_span(span, session_id, model) for turn in turns for span in turn]
    resource = [_attribute("service.name", "llamachat")]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [{"scope": {"name": "llamachat"}, "spans": spans}],
            }
        ]
    }


def _otlp_span(span: Span, session_id: str, model: str) -> dict[str, Any]:
    attributes = [
        _attribute("gen_ai.operation.name", _OPERATIONS[span["kind"]]),
        _attribute("gen_ai.conversation.id", session_id),
    ]
    if span["kind"] != "tool":
        attributes.append(_attribute("gen_ai.request.model", model))
    for key, value in span["attributes"].items():
        name = _OTEL_NAMES.get(key, f"llamachat.{key}")
        attributes.append(_attribute(name, [value] if key == "finish_reason" else value))
    failed = (
        span["attributes"].get("reason") == "error" or span["attributes"].get("outcome") == "failed"
    )
    otlp: dict[str, Any] = {
        "traceId": span["trace_id"],
        "spanId": span["span_id"],
        "name": span["name"] if span["kind"] != "tool" else f"execute_tool {span['name']}",
        "kind": 1,  # SPAN_KIND_INTERNAL
        "startTimeUnixNano": str(int(span["start"] * 1e9)),
        "endTimeUnixNano": str(int(span["end"] * 1e9)),
        "attributes": attributes,
        "status": {"code": 2 if failed else 1},  # ERROR / OK
    }
    if span["parent_id"]:
        otlp["parentSpanId"] = span["parent_id"]
    return otlp


def _attribute(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": _any_value(value)}


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP/JSON writes 64-bit integers as strings
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}
