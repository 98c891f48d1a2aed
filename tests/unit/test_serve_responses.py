"""The agent's events as Responses API stream events: order, items, usage, how a reply ends."""

from __future__ import annotations

import json
from typing import Any

from tui_agent.events import (
    Completed,
    Error,
    Event,
    IterationStart,
    PermissionRequest,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnStatistics,
)
from tui_agent.serve.requests import TurnRequest
from tui_agent.serve.responses import ResponseBuilder, server_label


def run(events: list[Event], queued: bool = False) -> tuple[ResponseBuilder, list[dict[str, Any]]]:
    builder = ResponseBuilder("resp_s1_1", "demo", "s1", TurnRequest(prompt="hi"))
    out = builder.created(queued) + builder.started()
    for event in events:
        out += builder.on(event)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return builder, out


def stats(prompt: int, cached: int, generated: int) -> TurnStatistics:
    return TurnStatistics(1, prompt, cached, generated, 0.1, 50.0, 1.0)


def test_text_then_a_tool_then_text_in_order_with_usage() -> None:
    builder, out = run(
        [
            IterationStart(1, 20),
            TextDelta("Let me "),
            TextDelta("look."),
            stats(100, 0, 5),
            ToolStart("call00001", "read_file", {"path": "a.txt"}),
            ToolResult("call00001", "read_file", True, "contents"),
            TextDelta("Done."),
            stats(130, 100, 2),
            Completed("done", "Done."),
        ]
    )
    assert [e["type"] for e in out] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = out[-1]["response"]
    assert final["status"] == "completed"
    kinds = [(item["type"], item["status"]) for item in final["output"]]
    assert kinds == [
        ("message", "completed"),
        ("function_call", "completed"),
        ("function_call_output", "completed"),
        ("message", "completed"),
    ]
    assert final["output"][0]["content"][0]["text"] == "Let me look."
    assert json.loads(final["output"][1]["arguments"]) == {"path": "a.txt"}
    assert final["output"][2]["call_id"] == final["output"][1]["call_id"] == "call00001"
    assert final["usage"] == {
        "input_tokens": 230,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 237,
    }
    assert builder.snapshot() == final


def test_a_queued_response_says_so_and_then_starts() -> None:
    _, out = run([Completed("done")], queued=True)
    assert [e["type"] for e in out][:3] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    assert out[0]["response"]["status"] == "queued"


def test_an_approval_request_ends_the_response() -> None:
    builder, out = run(
        [
            ToolStart("call00001", "run_shell", {"command": "rm -rf x"}),
            PermissionRequest(
                "ab12cd34",
                "call00001",
                "run_shell",
                {"command": "rm -rf x"},
                "rm deletes files",
                "run_shell(rm *)",
            ),
        ]
    )
    assert out[-1]["type"] == "response.completed"
    item = out[-1]["response"]["output"][-1]
    assert item["type"] == "mcp_approval_request"
    assert (item["id"], item["name"], item["server_label"]) == (
        "ab12cd34",
        "run_shell",
        "llamachat",
    )
    assert json.loads(item["arguments"]) == {"command": "rm -rf x"}
    assert builder.finished
    assert server_label("time__get_current_time") == "time"


def test_a_cut_reply_is_incomplete_and_an_error_fails() -> None:
    _, out = run([TextDelta("partial"), Completed("length", "partial")])
    final = out[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"
    _, out = run([Error("context full", "start a new session", "context"), Completed("error")])
    assert out[-1]["type"] == "response.failed"
    assert out[-1]["response"]["error"] == {
        "code": "context",
        "message": "context full (hint: start a new session)",
    }
