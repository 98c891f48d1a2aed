"""Request bodies for `llamachat serve`: what runs, and what is refused with which field named."""

from __future__ import annotations

from typing import Any

import pytest

from tui_agent.serve.requests import BadRequest, parse_turn_request, session_of_response


def test_a_string_input_is_the_prompt_with_its_settings() -> None:
    request = parse_turn_request(
        {"input": "hello", "stream": True, "temperature": 0, "max_output_tokens": 64, "top_p": 0.5}
    )
    assert (request.prompt, request.stream, request.temperature) == ("hello", True, 0.0)
    assert (request.max_output_tokens, request.top_p, request.session) == (64, 0.5, None)


def test_messages_give_history_system_and_the_new_prompt() -> None:
    request = parse_turn_request(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {"role": "user", "content": "Hi"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello"}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "How "},
                        {"type": "input_text", "text": "far?"},
                    ],
                },
            ],
        }
    )
    assert request.prompt == "How far?"
    assert [(m.role, m.content) for m in request.history] == [
        ("user", "Hi"),
        ("assistant", "Hello"),
    ]
    assert request.system == "Be brief.\n\nUse metric units."


def test_a_previous_response_names_its_session() -> None:
    assert session_of_response("resp_0a1b2c3d4e5f_7x9") == "0a1b2c3d4e5f"
    request = parse_turn_request({"input": "more", "previous_response_id": "resp_abc_1"})
    assert (request.session, request.continues_response) == ("abc", "resp_abc_1")
    assert parse_turn_request({"input": "more", "session": "abc"}).session == "abc"


def test_an_approval_answer_needs_the_response_that_asked() -> None:
    answer = {"type": "mcp_approval_response", "approval_request_id": "r1", "approve": True}
    request = parse_turn_request({"input": [answer], "previous_response_id": "resp_abc_1"})
    assert [(a.request_id, a.approve) for a in request.approvals] == [("r1", True)]
    assert request.prompt == ""
    with pytest.raises(BadRequest) as caught:
        parse_turn_request({"input": [answer]})
    assert caught.value.param == "previous_response_id"


def test_tool_choice_names_a_tool_any_tool_or_none() -> None:
    def choice(value: Any) -> tuple[str, str | None]:
        request = parse_turn_request({"input": "x", "tool_choice": value})
        return request.tool_choice, request.force_tool

    assert choice({"type": "function", "name": "read_file"}) == ("required", "read_file")
    assert choice("auto") == choice(None) == ("auto", None)
    assert choice("required") == ("required", None)
    assert choice("none") == ("none", None)


def test_store_false_starts_an_unsaved_session_that_cannot_be_continued() -> None:
    assert parse_turn_request({"input": "x"}).store
    assert not parse_turn_request({"input": "x", "store": False}).store
    with pytest.raises(BadRequest) as caught:
        parse_turn_request({"input": "x", "store": False, "previous_response_id": "resp_a_1"})
    assert caught.value.param == "store"
    answer = {"type": "mcp_approval_response", "approval_request_id": "r1", "approve": True}
    # Answering an approval is not a new turn: it goes on with the one that asked.
    unsaved = {"input": [answer], "store": False, "previous_response_id": "resp_a_1"}
    assert parse_turn_request(unsaved).approvals


BAD: list[tuple[Any, str | None, str]] = [
    ([], None, "JSON object"),
    ({}, "input", 'no "input"'),
    ({"input": "   "}, "input", "empty"),
    ({"input": []}, "input", "non-empty list"),
    ({"input": 5}, "input", "string or a non-empty list"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "one of"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
        "input[0].content[0]",
        "only text parts",
    ),
    ({"input": [{"role": "assistant", "content": "x"}]}, "input", "last input message"),
    (
        {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
        "input[0]",
        "runs its own tools",
    ),
    ({"input": [{"type": "web_search_call"}]}, "input[0].type", "unsupported item type"),
    ({"input": "x", "stream": "yes"}, "stream", "true or false"),
    ({"input": "x", "temperature": 9}, "temperature", "from 0 to 5"),
    ({"input": "x", "temperature": True}, "temperature", "number"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens", "1 or more"),
    ({"input": "x", "tools": [{"type": "function", "name": "f"}]}, "tools", "its own tools"),
    ({"input": "x", "tool_choice": "any"}, "tool_choice", '"none", "required"'),
    ({"input": "x", "tool_choice": {"type": "function"}}, "tool_choice", "auto"),
    ({"input": "x", "store": "no"}, "store", "true or false"),
    (
        {"input": "x", "previous_response_id": "chatcmpl-1"},
        "previous_response_id",
        "not a response id",
    ),
    (
        {"input": "x", "previous_response_id": "resp_a_1", "session": "b"},
        "session",
        "different sessions",
    ),
    (
        {
            "input": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            "session": "s",
        },
        "input",
        "only the new user message",
    ),
    (
        {
            "input": [
                {"type": "mcp_approval_response", "approval_request_id": "r", "approve": "yes"}
            ],
            "session": "s",
        },
        "input[0].approve",
        "true or false",
    ),
    (
        {
            "input": [
                {"type": "mcp_approval_response", "approval_request_id": "r", "approve": True},
                {"role": "user", "content": "and then"},
            ],
            "session": "s",
        },
        "input",
        "of their own",
    ),
]


@pytest.mark.parametrize(("body", "param", "words"), BAD)
def test_bad_requests_name_the_field_and_the_fix(body: Any, param: str | None, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_turn_request(body)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert words in caught.value.message
    assert caught.value.body()["error"]["type"] == "invalid_request_error"
