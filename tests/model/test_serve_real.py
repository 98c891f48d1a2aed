"""`llamachat serve` on the real demo model: the stream, the official openai client, a forced
tool call approved over the API, the README's curl examples, and the command's own start-up."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from openai import OpenAI

from tests.conftest import run_cli
from tests.serve_harness import final, stream, types
from tui_agent.commands.serve_cmd import build_session
from tui_agent.config import load_config
from tui_agent.serve.server import server_thread as serving
from tui_agent.store.sessions import SessionStore

pytestmark = pytest.mark.model
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def served(tmp_path: Path, demo_gguf: Path) -> Iterator[str]:
    (tmp_path / "ws").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        f'[model]\nsource = "{demo_gguf}"\nn_ctx = 2048\n'
        f'[history]\ndb_path = "{tmp_path / "h.db"}"\n[tools]\nworkspace_root = "{tmp_path / "ws"}"\n'
        "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 40\nmax_iterations = 2\n"
    )
    config = load_config(path)
    store = SessionStore(tmp_path / "h.db")
    with serving(build_session(config, None, store, [], [])) as url:
        yield url
    store.close()


def test_a_reply_streams_and_is_saved(served: str, tmp_path: Path) -> None:
    with httpx.Client(timeout=120) as client:
        events = stream(client, served, {"input": "Name three colours."})
        kinds = types(events)
        assert kinds[:3] == [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
        ]
        assert kinds[-1] in ("response.completed", "response.incomplete")
        deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        response = final(events)
        assert deltas and deltas == response["output"][-1]["content"][0]["text"]
        usage = response["usage"]
        assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 40
        whole = client.post(
            f"{served}/v1/responses",
            json={"input": "And one more?", "previous_response_id": response["id"]},
        ).json()
        assert whole["session"] == response["session"]
        assert (
            whole["usage"]["input_tokens_details"]["cached_tokens"] > 0
        )  # the KV cache was reused
    store = SessionStore(tmp_path / "h.db")
    roles = [m.role for m in store.load_conversation(response["session"]).messages]
    store.close()
    assert roles == ["user", "assistant", "user", "assistant"]


def test_the_openai_client_consumes_the_stream(served: str) -> None:
    client = OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    seen = []
    text = ""
    for event in client.responses.create(model="demo", input="Say hello.", stream=True):
        seen.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type in ("response.completed", "response.incomplete"):
            completed = event.response
    assert seen[0] == "response.created" and "response.output_text.delta" in seen
    assert text and completed.output_text == text
    assert completed.usage is not None and completed.usage.output_tokens > 0
    again = client.responses.create(model="demo", input="Bye.", previous_response_id=completed.id)
    assert again.output_text and again.previous_response_id == completed.id


def test_a_forced_write_is_approved_over_the_openai_client(served: str, tmp_path: Path) -> None:
    client = OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    asked = client.responses.create(
        model="demo",
        input="Create notes.txt saying hi",
        tool_choice={"type": "function", "name": "write_file"},
        max_output_tokens=200,  # the call's JSON does not fit in the configured 40
    )
    request = asked.output[-1]
    assert request.type == "mcp_approval_request" and request.name == "write_file", asked.output
    path = tmp_path / "ws" / json.loads(request.arguments)["path"]
    assert not path.exists()
    done = client.responses.create(
        model="demo",
        previous_response_id=asked.id,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
    )
    result = done.output[0]
    assert result.type == "function_call_output"
    # Approved, so the real tool ran; the tiny model picks the path, which may lie outside the
    # workspace (the tool refuses it then and writes nothing).
    assert not result.denied
    assert result.success == path.is_file()
    assert result.success or "outside the workspace" in result.output, result.output


def test_the_readme_curl_examples_work_as_written(served: str, tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("## Serving the agent over HTTP") :]
    section = section[: section.index("\n## ", 5)]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    [block] = [b for b in blocks if "curl" in b and "127.0.0.1:8765" in b]  # not MLflow's
    port = served.rsplit(":", 1)[1]
    script = block.replace("127.0.0.1:8765", f"127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    # The first reply and the continued one print (the middle one's id goes into $id); curl
    # adds no newline, so a JSON body may share its line with the next command's output.
    decoder = json.JSONDecoder()
    objects = [
        decoder.raw_decode(line)[0] for line in done.stdout.splitlines() if line.startswith("{")
    ]
    assert len(objects) == 2
    assert all(reply["status"] in ("completed", "incomplete") for reply in objects)
    assert objects[1]["previous_response_id"].startswith(f"resp_{objects[1]['session']}_")
    assert "event: response.output_text.delta" in done.stdout
    assert "event: response.completed" in done.stdout or "response.incomplete" in done.stdout


def test_serve_refuses_an_open_address_without_a_token(tmp_path: Path) -> None:
    refused = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in refused.stderr
    assert "--token-env" in refused.stderr
    empty = run_cli("serve", "--host", "0.0.0.0", "--token-env", "NO_SUCH_VAR_HERE")
    assert empty.returncode == 2 and "NO_SUCH_VAR_HERE" in empty.stderr


def test_the_serve_command_answers_and_stops(tmp_path: Path, demo_gguf: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[history]\ndb_path = "{tmp_path / "h.db"}"\n'
        "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 16\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "tui_agent", "serve", "--port", "0", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        first = server.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        url = f"http://127.0.0.1:{match.group(1)}"
        with httpx.Client(timeout=120) as client:
            reply = client.post(f"{url}/v1/responses", json={"input": "Hi"})
            assert reply.status_code == 200 and reply.json()["status"] in (
                "completed",
                "incomplete",
            )
            assert client.get(f"{url}/health").json()["status"] == "ready"
    finally:
        server.terminate()
        # uvicorn shuts down gracefully, then dies of the signal, as a SIGTERM'd program should.
        assert server.wait(30) == -signal.SIGTERM
    assert server.stderr is not None and "Traceback" not in server.stderr.read()
    assert SessionStore(tmp_path / "h.db").list_sessions(5, 0)
