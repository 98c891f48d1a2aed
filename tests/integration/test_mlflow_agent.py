"""llamachat's agent as an MLflow ResponsesAgent (the `mlflow` extra), on a scripted model with
the real tools, gate, history and desk, through MLflow's own request and event types. The real
model under `mlflow models serve` is in tests/model/test_mlflow_real.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.types.responses import ResponsesAgentRequest

from tests.scripted import ScriptedBackend
from tests.serve_harness import scripted_session
from tests.ui.harness import make_config
from tui_agent.serve.mlflow_agent import LlamachatAgent


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def asking(text: str, **custom: object) -> ResponsesAgentRequest:
    return ResponsesAgentRequest(
        input=[{"role": "user", "content": text}], custom_inputs=custom or None
    )


@pytest.fixture
def agent_on(tmp_path: Path) -> Iterator[tuple[LlamachatAgent, ScriptedBackend]]:
    backend = ScriptedBackend([])
    agent = LlamachatAgent(session=scripted_session(tmp_path, make_config(tmp_path), backend))
    try:
        yield agent, backend
    finally:
        agent.close()


def test_predict_runs_a_tool_and_continues_through_custom_inputs(
    agent_on: tuple[LlamachatAgent, ScriptedBackend],
) -> None:
    agent, backend = agent_on
    backend.replies += [call("read_file", path="notes.txt"), "In the tower.", "The keeper."]
    first = agent.predict(asking("Where does the keeper sleep?"))
    assert [item.type for item in first.output] == [
        "function_call",
        "function_call_output",
        "message",
    ]
    assert "lighthouse keeper" in first.output[1].output
    assert first.status == "completed" and first.usage is not None
    assert first.custom_outputs == {
        "previous_response_id": first.id,
        "session": first.custom_outputs["session"],
    }
    again = agent.predict(asking("Who sleeps there?", **first.custom_outputs))
    assert again.custom_outputs["session"] == first.custom_outputs["session"]
    assert "Where does the keeper sleep?" in backend.prompts[-1]


def test_predict_stream_gives_mlflow_events_in_order(
    agent_on: tuple[LlamachatAgent, ScriptedBackend],
) -> None:
    agent, backend = agent_on
    backend.replies.append("Hello there, friend.")
    events = list(agent.predict_stream(asking("Hi")))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.index("response.output_text.delta") < kinds.index("response.output_item.done")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello there, friend."
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done[-1].item["content"][0]["text"] == text
    assert events[-1].custom_outputs["previous_response_id"] == events[-1].response["id"]


def test_a_call_that_asks_is_answered_through_mlflow(
    agent_on: tuple[LlamachatAgent, ScriptedBackend], tmp_path: Path
) -> None:
    agent, backend = agent_on
    marker = tmp_path / "ws" / "approved.txt"
    backend.replies += [call("write_file", path="approved.txt", content="yes\n"), "Written."]
    asked = agent.predict(asking("Write the file"))
    request = asked.output[-1]
    assert request.type == "mcp_approval_request" and request.name == "write_file"
    assert not marker.exists()
    answer = ResponsesAgentRequest(
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
        custom_inputs={"previous_response_id": asked.id},
    )
    done = agent.predict(answer)
    assert done.status == "completed"
    assert [item.type for item in done.output] == ["function_call_output", "message"]
    assert marker.read_text() == "yes\n"


def test_bad_requests_are_mlflow_errors_that_name_the_field(
    agent_on: tuple[LlamachatAgent, ScriptedBackend],
) -> None:
    agent, backend = agent_on
    with pytest.raises(MlflowException) as caught:
        agent.predict(
            ResponsesAgentRequest(
                input=[{"role": "user", "content": "x"}],
                tools=[{"type": "function", "name": "f", "parameters": {}}],
            )
        )
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "its own tools" in caught.value.message and "(tools)" in caught.value.message
    with pytest.raises(MlflowException) as caught:
        agent.predict(asking("x", session="nosuchsession"))
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "custom_inputs.previous_response_id" in caught.value.message
    assert backend.prompts == []  # nothing ran


def test_a_stream_left_early_cancels_its_turn_and_the_agent_goes_on(
    agent_on: tuple[LlamachatAgent, ScriptedBackend],
) -> None:
    agent, backend = agent_on
    backend.piece_size, backend.pause_after = 2, 3
    backend.replies += ["a long reply that will not be read to its end", "Next."]
    stream = agent.predict_stream(asking("Tell me a story"))
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    stream.close()  # the client went away
    backend.resume.set()
    backend.pause_after = None
    after = agent.predict(asking("Something short"))
    assert after.status == "completed" and after.output[-1].content[0]["text"] == "Next."
