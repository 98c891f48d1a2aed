"""Turn traces: spans from the agent's events, the tree `history show --trace` draws, and
OTLP JSON that the official OpenTelemetry schema accepts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tui_agent.events import (
    Completed,
    Event,
    IterationStart,
    PermissionRequest,
    PermissionResult,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnStatistics,
)
from tui_agent.store.traces import Span, TurnTracer, otlp_json, trace_tree


def ticking(start: float = 1_700_000_000.0, step: float = 0.5) -> Iterator[float]:
    now = start
    while True:
        yield now
        now += step


def traced(events: list[Event]) -> list[Span]:
    clock = ticking()
    tracer = TurnTracer(clock=lambda: next(clock))
    finished = [spans for e in events if (spans := tracer.observe(e)) is not None]
    assert len(finished) == 1
    return finished[0]


TURN: list[Event] = [
    IterationStart(1, 20),
    TextDelta("Let me write it."),
    TurnStatistics(1, 800, 640, 12, 0.31, 38.2, 0.6, finish_reason="stop"),
    ToolStart("call00001", "write_file", {"path": "a.txt"}),
    PermissionRequest(
        "r1", "call00001", "write_file", {"path": "a.txt"}, "writes", "write_file(a.txt)"
    ),
    PermissionResult("call00001", "write_file", True, "once", "approved"),
    ToolResult("call00001", "write_file", True, "wrote a.txt"),
    IterationStart(2, 20),
    TurnStatistics(2, 830, 800, 5, 0.12, 40.0, 0.2, finish_reason="stop"),
    Completed("done", "Done."),
]


def test_a_turn_gives_a_span_per_model_and_tool_call() -> None:
    spans = traced(TURN)
    turn, first, tool, _ = spans
    assert [s["kind"] for s in spans] == ["turn", "model", "tool", "model"]
    assert {s["trace_id"] for s in spans} == {turn["trace_id"]}
    assert [s["parent_id"] for s in spans] == ["", *[turn["span_id"]] * 3]
    assert (
        first["attributes"]["prompt_tokens"] == 800 and first["attributes"]["cached_tokens"] == 640
    )
    assert first["attributes"]["finish_reason"] == "stop"
    assert tool["attributes"] | {} == {
        "tool": "write_file",
        "call_id": "call00001",
        "decision": "allowed",
        "scope": "once",
        "reason": "approved",
        "waited_seconds": 0.5,
        "outcome": "ok",
        "output_chars": len("wrote a.txt"),
    }
    assert turn["attributes"]["reason"] == "done"
    assert turn["attributes"]["model_calls"] == 2 and turn["attributes"]["tool_calls"] == 1
    assert turn["attributes"]["generated_tokens"] == 17
    assert all(s["end"] >= s["start"] for s in spans)
    assert turn["end"] == max(s["end"] for s in spans)


def test_a_cancelled_turn_closes_what_was_open() -> None:
    spans = traced(
        [IterationStart(1, 20), ToolStart("c1", "run_shell", {}), Completed("cancelled")]
    )
    assert all(s["end"] is not None for s in spans)
    assert spans[0]["attributes"]["reason"] == "cancelled"
    assert "outcome" not in spans[2]["attributes"]


def test_the_tree_shows_each_call_with_timings() -> None:
    lines = trace_tree([traced(TURN)])
    assert lines[0].startswith("turn 1 ") and "done" in lines[0] and "2 model call(s)" in lines[0]
    assert lines[1].lstrip().startswith("├─") and "model call 1" in lines[1]
    assert "prompt 800 (640 cached)" in lines[1] and "38.2 tok/s" in lines[1]
    assert "write_file" in lines[2] and "allowed (once), waited 0.50 s · ok" in lines[2]
    assert lines[3].lstrip().startswith("└─") and "model call 2" in lines[3]


def test_otlp_json_is_what_the_opentelemetry_schema_accepts() -> None:
    data = otlp_json("sess1", "demo", [traced(TURN)])
    request = json_format.Parse(json.dumps(data), ExportTraceServiceRequest())
    spans = request.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in spans] == [
        "turn",
        "model call",
        "execute_tool write_file",
        "model call",
    ]
    # OTLP/JSON writes ids as hex, where proto3's JSON mapping (this parser) reads base64.
    first = data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert re.fullmatch("[0-9a-f]{32}", first["traceId"]) and re.fullmatch(
        "[0-9a-f]{16}", first["spanId"]
    )
    assert spans[1].parent_span_id == spans[0].span_id
    assert spans[1].end_time_unix_nano - spans[1].start_time_unix_nano == 1_000_000_000
    attributes = {a.key: a.value for a in spans[1].attributes}
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.usage.input_tokens"].int_value == 800
    assert attributes["gen_ai.response.finish_reasons"].array_value.values[0].string_value == "stop"
    assert attributes["gen_ai.conversation.id"].string_value == "sess1"
    tool = {a.key: a.value for a in spans[2].attributes}
    assert tool["gen_ai.tool.name"].string_value == "write_file"
