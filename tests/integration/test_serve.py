"""`llamachat serve` over real HTTP on 127.0.0.1: a scripted model (deterministic tool calls),
the real tools, permission gate, history and server. The real model's turn through the same
server is in tests/model/test_serve_real.py."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import run_cli
from tests.scripted import ScriptedBackend
from tests.serve_harness import final, scripted_session, stream, types
from tests.ui.harness import make_config
from tui_agent.agent.conversation import DEFAULT_SYSTEM_PROMPT
from tui_agent.serve.server import server_thread as serving
from tui_agent.store.sessions import SessionStore


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def saved_roles(config_db: str, session: str) -> list[str]:
    store = SessionStore(Path(config_db))
    try:
        return [m.role for m in store.load_conversation(session).messages]
    finally:
        store.close()


def test_a_tool_that_runs_streams_in_order_and_is_saved(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    backend = ScriptedBackend(
        [call("read_file", path="notes.txt"), "The keeper sleeps in the tower."]
    )
    with (
        serving(scripted_session(tmp_path, config, backend)) as url,
        httpx.Client(timeout=30) as client,
    ):
        events = stream(client, url, {"input": "Where does the keeper sleep?"})
        kinds = types(events)
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert kinds.index("response.function_call_arguments.done") < kinds.index(
            "response.output_text.delta"
        )
        response = final(events)
        items = response["output"]
        assert [i["type"] for i in items] == ["function_call", "function_call_output", "message"]
        assert "lighthouse keeper" in items[1]["output"] and items[1]["success"]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == items[2]["content"][0]["text"] == "The keeper sleeps in the tower."
        assert response["usage"]["output_tokens"] > 0
        # Continue the session by the response id: the model sees the first exchange.
        again = client.post(
            f"{url}/v1/responses",
            json={"input": "And who?", "previous_response_id": response["id"]},
        ).json()
        assert again["session"] == response["session"]
        # The same instructions may come with every request; others would rewrite the prompt.
        kept = client.post(
            f"{url}/v1/responses",
            json={
                "input": "Hi",
                "session": again["session"],
                "instructions": DEFAULT_SYSTEM_PROMPT,
            },
        )
        assert kept.status_code == 200, kept.text
        changed = client.post(
            f"{url}/v1/responses",
            json={"input": "Hi", "session": again["session"], "instructions": "Be terse."},
        )
        assert changed.status_code == 400 and changed.json()["error"]["param"] == "instructions"
        assert "Where does the keeper sleep?" in backend.prompts[-1]
    assert saved_roles(config.history.db_path, response["session"]) == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_tool_choice_none_and_required_and_an_unsaved_session(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    backend = ScriptedBackend(["No tools here.", call("read_file", path="notes.txt"), "Done."])
    with (
        serving(scripted_session(tmp_path, config, backend)) as url,
        httpx.Client(timeout=30) as client,
    ):
        quiet = client.post(
            f"{url}/v1/responses", json={"input": "Hi", "tool_choice": "none", "store": False}
        ).json()
        assert quiet["status"] == "completed" and quiet["tool_choice"] == "none"
        assert quiet["store"] is False
        assert backend.offered[-1] == [] and "read_file" not in backend.prompts[-1]
        # Not kept: it cannot be continued, and nothing of it is in the history.
        again = client.post(
            f"{url}/v1/responses", json={"input": "More", "previous_response_id": quiet["id"]}
        )
        assert again.status_code == 404 and "store: false" in again.json()["error"]["message"]
        forced = client.post(
            f"{url}/v1/responses", json={"input": "Read it", "tool_choice": "required"}
        ).json()
        assert [i["type"] for i in forced["output"]] == [
            "function_call",
            "function_call_output",
            "message",
        ]
        # The first call was held to a call of any of the tools, the next one was free.
        assert len(backend.grammars[-2] or []) > 1 and backend.grammars[-1] is None
    store = SessionStore(Path(config.history.db_path))
    try:
        assert not store.exists(quiet["session"]) and store.exists(forced["session"])
    finally:
        store.close()


def test_a_call_that_asks_waits_for_approval_over_the_api(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    marker = tmp_path / "ws" / "approved.txt"
    backend = ScriptedBackend(
        [call("write_file", path="approved.txt", content="yes\n"), "Written."]
    )
    with (
        serving(scripted_session(tmp_path, config, backend)) as url,
        httpx.Client(timeout=30) as client,
    ):
        events = stream(client, url, {"input": "Write the file"})
        asked = final(events)
        request = asked["output"][-1]
        assert request["type"] == "mcp_approval_request" and request["name"] == "write_file"
        assert "+yes" in request["diff"]
        assert not marker.exists()  # nothing runs before the answer
        answer = {
            "type": "mcp_approval_response",
            "approval_request_id": request["id"],
            "approve": True,
        }
        events = stream(client, url, {"input": [answer], "previous_response_id": asked["id"]})
        done = final(events)
        assert done["status"] == "completed"
        assert [i["type"] for i in done["output"]] == ["function_call_output", "message"]
        assert done["output"][0]["success"] and not done["output"][0]["denied"]
        assert marker.read_text() == "yes\n"
        # The answer was for this call only: the same call asks again.
        backend.replies += [call("write_file", path="approved.txt", content="again\n"), "x"]
        asked = client.post(
            f"{url}/v1/responses", json={"input": "Again", "session": done["session"]}
        ).json()
        assert asked["output"][-1]["type"] == "mcp_approval_request"
        assert marker.read_text() == "yes\n"
    # The turn's trace: the model calls and the tool call, with the wait for the answer.
    store = SessionStore(Path(config.history.db_path))
    [turn, *_] = store.traces(done["session"])
    store.close()
    tool = next(span for span in turn if span["kind"] == "tool")
    assert tool["attributes"]["decision"] == "allowed" and tool["attributes"]["scope"] == "once"
    assert tool["attributes"]["waited_seconds"] > 0 and tool["attributes"]["outcome"] == "ok"
    assert [span["kind"] for span in turn].count("model") == 2
    shown = run_cli("history", "show", done["session"], "--trace", "--config", str(config.path))
    assert shown.returncode == 0, shown.stderr
    assert "write_file" in shown.stdout and "allowed (once), waited" in shown.stdout
    exported = run_cli(
        "history", "export", done["session"], "--format", "otlp-json", "--config", str(config.path)
    )
    spans = json.loads(exported.stdout)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert "execute_tool write_file" in [span["name"] for span in spans]


def test_a_denied_call_does_not_run_and_the_model_is_told(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    marker = tmp_path / "ws" / "denied.txt"
    backend = ScriptedBackend([call("write_file", path="denied.txt", content="no\n"), "Fine."])
    with (
        serving(scripted_session(tmp_path, config, backend)) as url,
        httpx.Client(timeout=30) as client,
    ):
        asked = client.post(f"{url}/v1/responses", json={"input": "Write it"}).json()
        request_id = asked["output"][-1]["id"]
        answer = {
            "type": "mcp_approval_response",
            "approval_request_id": request_id,
            "approve": False,
            "reason": "not today",
        }
        done = client.post(
            f"{url}/v1/responses", json={"input": [answer], "previous_response_id": asked["id"]}
        ).json()
        result = done["output"][0]
        assert result["denied"] and not result["success"]
        assert "not today" in result["output"]
        assert "not today" in backend.prompts[-1]  # the model read why
        # Answering the same request again is refused: the response no longer waits.
        again = client.post(
            f"{url}/v1/responses", json={"input": [answer], "previous_response_id": asked["id"]}
        )
        assert again.status_code == 409 and "not waiting" in again.json()["error"]["message"]
    assert not marker.exists()


def test_an_unanswered_approval_is_denied_after_the_timeout(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    marker = tmp_path / "ws" / "late.txt"
    backend = ScriptedBackend([call("write_file", path="late.txt", content="late\n"), "Skipped."])
    session = scripted_session(tmp_path, config, backend)
    with serving(session, approval_timeout=1.0) as url, httpx.Client(timeout=30) as client:
        asked = client.post(f"{url}/v1/responses", json={"input": "Write it"}).json()
        # The model is busy with that turn: another session's request waits in line behind it.
        started = time.monotonic()
        other = client.post(f"{url}/v1/responses", json={"input": "Hello"}).json()
        assert time.monotonic() - started > 0.5
        assert other["status"] == "completed"
        assert "no answer came within 1 s" in backend.prompts[-2]
        request_id = asked["output"][-1]["id"]
        answer = {
            "type": "mcp_approval_response",
            "approval_request_id": request_id,
            "approve": True,
        }
        late = client.post(
            f"{url}/v1/responses", json={"input": [answer], "previous_response_id": asked["id"]}
        )
        assert late.status_code == 409 and "within 1 s" in late.json()["error"]["message"]
    assert not marker.exists()


def test_two_clients_queue_on_the_one_model(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    backend = ScriptedBackend(["first " * 40, "second reply"], pause_after=2)
    with (
        serving(scripted_session(tmp_path, config, backend)) as url,
        httpx.Client(timeout=30) as client,
    ):
        results: dict[str, list[dict[str, object]]] = {}

        def first() -> None:
            results["first"] = stream(client, url, {"input": "one"})

        thread = threading.Thread(target=first)
        thread.start()
        while len(backend.prompts) < 1:
            time.sleep(0.01)
        with client.stream(
            "POST", f"{url}/v1/responses", json={"input": "two", "stream": True}
        ) as second:
            lines = second.iter_lines()
            queued = []
            for line in lines:
                if line.startswith("data: "):
                    queued.append(json.loads(line[6:]))
                    if queued[-1]["type"] == "response.queued":
                        break
            assert [e["type"] for e in queued] == ["response.created", "response.queued"]
            backend.resume.set()
            rest = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
        thread.join(10)
        assert final(results["first"])["status"] == "completed"
        assert types(rest)[0] == "response.in_progress" and final(rest)["status"] == "completed"
        assert final(results["first"])["session"] != final(rest)["session"]


def test_a_client_that_disconnects_cancels_its_reply(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    # 334 pieces, 10 ms apart: 3.3 s when nobody hangs up.
    backend = ScriptedBackend(["word " * 200, "next"], piece_delay=0.01)
    session = scripted_session(tmp_path, config, backend)
    with serving(session) as url, httpx.Client(timeout=30) as client:
        with client.stream(
            "POST", f"{url}/v1/responses", json={"input": "long", "stream": True}
        ) as r:
            for line in r.iter_lines():
                if "output_text.delta" in line:
                    break  # hang up mid-reply
        deadline = time.monotonic() + 10
        while session.busy or not backend.prompts:
            assert time.monotonic() < deadline, "the reply was not cancelled"
            time.sleep(0.02)
        # The model is free again and the cut reply is saved as interrupted.
        after = client.post(f"{url}/v1/responses", json={"input": "again"}).json()
        assert after["status"] == "completed"
        store = SessionStore(Path(config.history.db_path))
        sessions = store.list_sessions(10, 0)
        cut = next(s for s in sessions if s.id != after["session"])
        messages = store.load_conversation(cut.id).messages
        store.close()
        assert messages[-1].role == "assistant" and messages[-1].interrupted
        assert len(messages[-1].content) < len("word " * 200) / 2, len(messages[-1].content)


def test_health_models_and_bad_requests(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with (
        serving(scripted_session(tmp_path, config, ScriptedBackend(["hi"]))) as url,
        httpx.Client(timeout=30) as client,
    ):
        deadline = time.monotonic() + 10
        while (health := client.get(f"{url}/health")).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert health.json() == {"status": "ready", "model": "scripted"}
        assert client.get(f"{url}/v1/models").json()["data"][0]["id"] == "scripted"
        bad = client.post(f"{url}/v1/responses", json={"input": "x", "temperature": 7})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "temperature"
        broken = client.post(
            f"{url}/v1/responses",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
        unknown = client.post(
            f"{url}/v1/responses", json={"input": "x", "session": "nosuchsession"}
        )
        assert unknown.status_code == 404
        invocation = client.post(
            f"{url}/invocations", json={"input": [{"role": "user", "content": "hi"}]}
        )
        assert invocation.status_code == 200 and invocation.json()["status"] == "completed"


HOSTILE = [
    # A web page's "simple" cross-origin POST needs no preflight: text/plain and forms.
    ({"content-type": "text/plain"}, 415),
    ({"content-type": "application/x-www-form-urlencoded"}, 415),
    # DNS rebinding: the page's own host name resolves to 127.0.0.1.
    ({"content-type": "application/json", "host": "evil.example:8765"}, 403),
    ({"content-type": "application/json", "origin": "https://evil.example"}, 403),
    ({"content-type": "application/json", "origin": "null"}, 403),
]


@pytest.mark.parametrize(("headers", "status"), HOSTILE)
def test_requests_a_web_page_could_send_run_nothing(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    config = make_config(tmp_path)
    marker = tmp_path / "ws" / "pwned.txt"
    backend = ScriptedBackend([call("write_file", path="pwned.txt", content="x")])
    # Even an allow rule for the call: the request never reaches the model.
    session = scripted_session(tmp_path, config, backend)
    body = json.dumps({"input": "write pwned.txt"}).encode()
    with serving(session) as url, httpx.Client(timeout=30) as client:
        response = client.post(f"{url}/v1/responses", content=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]
    assert backend.prompts == [] and not marker.exists()


def test_a_token_is_required_and_compared_whole(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    backend = ScriptedBackend(["hello"])
    with (
        serving(scripted_session(tmp_path, config, backend), token="s3cret-token") as url,
        httpx.Client(timeout=30) as client,
    ):
        for given in (None, "Bearer s3cret", "Bearer s3cret-token-and-more", "s3cret-token"):
            headers = {"authorization": given} if given else {}
            response = client.post(f"{url}/v1/responses", json={"input": "hi"}, headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert client.get(f"{url}/health").status_code == 401
        assert backend.prompts == []
        ok = client.post(
            f"{url}/v1/responses",
            json={"input": "hi"},
            headers={"authorization": "Bearer s3cret-token"},
        )
        assert ok.status_code == 200 and ok.json()["status"] == "completed"


def test_a_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    backend = ScriptedBackend(["hello"])
    with (
        serving(scripted_session(tmp_path, config, backend), max_request_bytes=2048) as url,
        httpx.Client(timeout=30) as client,
    ):
        response = client.post(f"{url}/v1/responses", json={"input": "x" * 5000})
        assert (
            response.status_code == 413
            and "max_request_bytes" in response.json()["error"]["message"]
        )

        def chunks():  # no Content-Length: the limit holds while reading
            yield b'{"input": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        chunked = client.post(
            f"{url}/v1/responses", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413
    assert backend.prompts == []


def test_a_streamed_failure_is_a_failed_response(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    backend = ScriptedBackend(["never"])
    with (
        serving(scripted_session(tmp_path, config, backend)) as url,
        httpx.Client(timeout=30) as client,
    ):
        events = stream(
            client, url, {"input": "x", "tool_choice": {"type": "function", "name": "no_such_tool"}}
        )
        assert types(events)[-1] == "response.failed"
        error = final(events)["error"]
        assert error["code"] == "config" and "no_such_tool" in error["message"]
        whole = client.post(
            f"{url}/v1/responses",
            json={"input": "x", "tool_choice": {"type": "function", "name": "no_such_tool"}},
        )
        assert whole.status_code == 400 and whole.json()["status"] == "failed"
