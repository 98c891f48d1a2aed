"""The agent on a model served over HTTP: a real OpenAI-compatible server (llama-cpp-python's,
on the demo GGUF) for the feature, and a small scripted server only to inject faults (a 401, a
server still loading, a dropped stream, a call streamed in pieces)."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, run_cli
from tui_agent.config import AgentConfig, Config, ModelConfig
from tui_agent.events import Completed, Error, Event, TextDelta
from tui_agent.session import Session
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.setup import build_tools

BOUNDED = AgentConfig(temperature=0.0, max_tokens_per_completion=128, max_iterations=2)


@pytest.fixture(scope="module")
def llama_server(demo_gguf: Path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(demo_gguf), "--port",
         str(port), "--n_ctx", "4096", "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


@pytest.mark.model
def test_headless_on_a_real_server_streams_and_saves(
    llama_server: str, demo_gguf: Path, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{tmp_path / "h.db"}"\n')
    result = run_cli(
        "-m", llama_server, "-p", "Say hello.", "--output-format", "stream-json",
        "--config", str(config),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    loaded = next(r for r in records if r["type"] == "model_loaded")
    assert loaded["model"] == f"{demo_gguf.name} @ {llama_server.split('/')[2]}"
    assert loaded["n_ctx"] > 0
    assert any(r["type"] == "text_delta" for r in records)
    completed = next(r for r in records if r["type"] == "completed")
    assert completed["reason"] == "done"
    session_id = records[-1]["session_id"]
    entries = SessionStore(tmp_path / "h.db").entries(session_id)
    assert [e.role for e in entries if e.kind == "message"] == ["user", "assistant"]


@pytest.mark.model
def test_cancel_closes_the_stream_and_the_session_goes_on(llama_server: str) -> None:
    cancel_then_carry_on(llama_server)


def cancel_then_carry_on(url: str) -> None:
    """Esc during a streamed reply: it stops within a second, and the next prompt works."""
    # Greedy and short: a sampled reply (and the calls it may make) could run past the wait.
    config = Config(model=ModelConfig(source=url), agent=BOUNDED)
    session = Session.from_config(config, None, None, lambda: build_tools(config))
    session.start()
    try:
        session.send("Write a long story about the sea, in many chapters.")
        events = until(session, lambda e: isinstance(e, TextDelta))
        started = time.monotonic()
        session.cancel()
        events = until(session, lambda e: isinstance(e, Completed))
        assert time.monotonic() - started < 1.0 and events[-1].reason == "cancelled"  # type: ignore[attr-defined]
        session.send("Say hi.")
        events = until(session, lambda e: isinstance(e, Completed))
        assert events[-1].reason == "done", [e for e in events if isinstance(e, Error)]  # type: ignore[attr-defined]
    finally:
        session.close()


@pytest.mark.model
def test_completions_with_the_template_from_a_local_gguf(
    llama_server: str, demo_gguf: Path, tmp_path: Path
) -> None:
    """llama-cpp-python's server says no template: the config names the GGUF that holds it, and
    the prompt is rendered here, the forced call held by a grammar sent over HTTP."""
    (tmp_path / "notes.txt").write_text("tower\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[model]\napi = "completions"\nchat_template = "{demo_gguf}"\n'
        f'[tools]\nworkspace_root = "{tmp_path}"\n[agent]\ntemperature = 0.0\n'
    )
    result = run_cli(
        "-m", llama_server, "-p", "What is in notes.txt?", "--config", str(config), "--no-save",
        "--force-tool", "read_file", "--allow", "read_file", "--max-iterations", "1",
        "--output-format", "stream-json",
    )  # fmt: skip
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["reason"] == "max_iterations", result.stderr  # the one call, then stop
    loaded = next(r for r in records if r["type"] == "model_loaded")
    assert loaded["chat_template"] == (
        f"openai-compatible, completions API, template: {demo_gguf.name} ([model] chat_template)"
    )
    [call] = [r for r in records if r["type"] == "tool_start"]
    assert call["name"] == "read_file" and isinstance(call["arguments"].get("path"), str)


@pytest.mark.model
def test_completions_without_a_known_template_says_how_to_give_one(
    llama_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[model]\napi = "completions"\n')
    result = headless(llama_server, "--config", str(config))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "chat template" in result.stderr and "[model] chat_template" in result.stderr


def until(session: Session, last: Callable[[Event], bool], timeout: float = 60) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while not events or not last(events[-1]):
        events.append(session.events.get(timeout=max(0.1, deadline - time.monotonic())))
    return events


# --- faults, from a scripted server -----------------------------------------------------------

Reply = tuple[int, dict[str, str], list[bytes]]


class Scripted(ThreadingHTTPServer):
    """Answers each path with the next scripted reply (status, headers, body pieces)."""

    daemon_threads = True

    def __init__(self, routes: dict[str, list[Reply]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = {path: queue.SimpleQueue() for path in routes}
        for path, replies in routes.items():
            for reply in replies:
                self.routes[path].put(reply)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.server.requests.append(
            (self.path, {**body, "auth": self.headers.get("Authorization")})
        )
        replies = self.server.routes.get(self.path)
        if replies is None or replies.empty():
            self.send_error(404)
            return
        status, headers, pieces = replies.get()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        for piece in pieces:
            if piece == b"<drop>":
                self.connection.close()
                return
            self.wfile.write(piece)
            self.wfile.flush()

    do_GET = do_POST = _reply


# An entry that is not a model object, as a sloppy server might list: skipped, not a crash.
MODELS: Reply = (200, {}, [json.dumps({"data": ["junk", {"id": "coder-30b"}]}).encode()])


def sse(*chunks: dict[str, Any], done: bool = True) -> Reply:
    lines = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return (
        200,
        {"Content-Type": "text/event-stream"},
        [*lines, *([b"data: [DONE]\n\n"] if done else [])],
    )


def text(words: str) -> dict[str, Any]:
    return {"choices": [{"delta": {"content": words}, "finish_reason": None}]}


def headless(
    url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("-m", url, "-p", "hi", "--no-save", *extra, env=env)


def test_nothing_listening_is_exit_3_with_a_hint() -> None:
    result = headless(f"http://127.0.0.1:{free_port()}/v1")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "nothing answers at 127.0.0.1" in result.stderr and "start the server" in result.stderr


def test_a_refused_key_names_the_variable(tmp_path: Path) -> None:
    server = Scripted({"/v1/models": [(401, {}, [b"{}"])]})
    config = tmp_path / "c.toml"
    config.write_text('[model]\napi_key_env = "CODER_KEY"\n')
    result = headless(server.url, "--config", str(config), env={"CODER_KEY": "s3cret"})
    assert result.returncode == 3 and "not authorized" in result.stderr
    assert "$CODER_KEY" in result.stderr and "s3cret" not in result.stderr + result.stdout
    assert server.requests[-1][1]["auth"] == "Bearer s3cret"


def test_not_an_openai_server_and_several_models() -> None:
    html = Scripted({"/v1/models": [(200, {}, [b"<html>hello</html>"])]})
    result = headless(html.url)
    assert result.returncode == 3 and "is not an OpenAI-compatible server" in result.stderr
    two = json.dumps({"data": [{"id": "a"}, "junk", {"id": "b"}]}).encode()
    several = Scripted({"/v1/models": [(200, {}, [two])]})
    result = headless(several.url)
    assert result.returncode == 3 and "serves 2 models" in result.stderr
    assert "remote_model" in result.stderr and "a, b" in result.stderr


def test_a_server_still_loading_is_waited_for() -> None:
    server = Scripted(
        {
            "/health": [(503, {}, [b"{}"]), (503, {}, [b"{}"]), (200, {}, [b"{}"])],
            "/v1/models": [MODELS],
            "/v1/chat/completions": [sse(text("Hello"), text(" there."))],
        }
    )
    result = headless(server.url, "--output-format", "stream-json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert any("server loading model" in r.get("model", "") for r in records)
    assert "".join(r["text"] for r in records if r["type"] == "text_delta") == "Hello there."


def test_a_call_streamed_in_pieces_runs_through_the_gate(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the keeper sleeps in the tower\n")
    pieces = [
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "x1", "type": "function",
          "function": {"name": "read_file", "arguments": ""}}]}, "finish_reason": None}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"pa'}}]},
          "finish_reason": None}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'th": "notes.txt"}'}}]},
          "finish_reason": "tool_calls"}]},
    ]  # fmt: skip
    server = Scripted(
        {
            "/v1/models": [MODELS],
            "/v1/chat/completions": [sse(*pieces), sse(text("In the tower."))],
        }
    )
    config = tmp_path / "c.toml"
    config.write_text(f'[tools]\nworkspace_root = "{tmp_path}"\n')
    result = headless(server.url, "--config", str(config), "--output-format", "stream-json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    [ran] = [r for r in records if r["type"] == "tool_result"]
    assert ran["name"] == "read_file" and ran["success"] and "keeper" in ran["output"]
    second = server.requests[-1][1]
    assert second["messages"][-2]["tool_calls"][0]["function"]["arguments"] == json.dumps(
        {"path": "notes.txt"}
    ), "sent back as the API has it: arguments as a JSON string"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": second["messages"][-2]["tool_calls"][0]["id"],
        "content": ran["output"],
    }
    assert {"read_file", "list_dir"} <= {t["function"]["name"] for t in second["tools"]}


def test_a_stream_dropped_mid_reply_keeps_the_partial_reply(tmp_path: Path) -> None:
    server = Scripted(
        {
            "/v1/models": [MODELS],
            "/v1/chat/completions": [
                (200, {"Content-Type": "text/event-stream"},
                 [f"data: {json.dumps(text('Half a'))}\n\n".encode(), b"<drop>"]),
            ],
        }
    )  # fmt: skip
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{tmp_path / "h.db"}"\n')
    result = run_cli(
        "-m", server.url, "-p", "hi", "--config", str(config), "--output-format", "json"
    )
    record = json.loads(result.stdout)
    assert result.returncode == 3 and record["errors"][0]["kind"] == "remote"
    assert "mid-reply" in record["errors"][0]["message"]
    saved = SessionStore(tmp_path / "h.db").entries(record["session_id"])
    reply = [e for e in saved if e.role == "assistant"]
    assert [(e.content, e.interrupted) for e in reply] == [("Half a", True)]


def test_garbage_in_the_stream_is_named() -> None:
    server = Scripted(
        {
            "/v1/models": [MODELS],
            "/v1/chat/completions": [(200, {}, [b"data: <html>oops</html>\n\n"])],
        }
    )
    result = headless(server.url)
    assert result.returncode == 3 and "not a stream of JSON events" in result.stderr


def test_a_server_that_never_answers_times_out_saying_so(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (the kernel does), never reads or writes
    config = tmp_path / "c.toml"
    config.write_text("[model]\nread_timeout_sec = 0.5\n")
    try:
        port = silent.getsockname()[1]
        result = headless(f"http://127.0.0.1:{port}/v1", "--config", str(config))
    finally:
        silent.close()
    assert result.returncode == 3 and "sent nothing for 0.5 s" in result.stderr


@pytest.mark.model
def test_models_check_on_a_server(llama_server: str, demo_gguf: Path) -> None:
    result = run_cli("models", "check", llama_server, "--tokens", "16")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    assert lines["server"].strip().startswith(llama_server)
    assert lines["model"].strip().endswith(demo_gguf.name)
    assert "tok/s" in lines["generation"] and lines["context"].strip().startswith("4,096")


def test_a_briefly_unavailable_server_is_asked_again_before_the_reply() -> None:
    server = Scripted(
        {
            "/v1/models": [MODELS],
            "/v1/chat/completions": [(503, {}, [b"busy"]), sse(text("Back again."))],
        }
    )
    result = headless(server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Back again."
    assert [path for path, _ in server.requests].count("/v1/chat/completions") == 2


def test_an_unknown_host_and_a_failed_tls_handshake_are_named() -> None:
    result = headless("http://no-such-host.invalid:8080/v1")
    assert result.returncode == 3 and "cannot find the host no-such-host.invalid" in result.stderr
    plain = Scripted({"/v1/models": [MODELS]})  # speaks HTTP, asked for TLS
    result = headless(plain.url.replace("http://", "https://"))
    assert result.returncode == 3 and "TLS with 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_token_estimates_follow_the_servers_usage_figures() -> None:
    from tui_agent.agent.remote_backend import RemoteChatBackend, remote_backend
    from tui_agent.engine.generation import GREEDY, collect
    from tui_agent.engine.remote import RemoteServer, RemoteSettings
    from tui_agent.events import ignore_event

    usage = {"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 1}}
    server = Scripted({"/v1/models": [MODELS], "/v1/chat/completions": []})
    remote = RemoteServer(RemoteSettings(server.url))
    backend = remote_backend(remote, remote.check(ignore_event, server.url), ModelConfig())
    assert isinstance(backend, RemoteChatBackend)
    prompt = backend.render([{"role": "user", "content": "word " * 300}], [])
    before = backend.count_tokens(prompt)
    assert before == len(prompt) // 3 + 1, "no figure yet: three characters a token"
    usage["usage"]["prompt_tokens"] = len(prompt) // 4  # type: ignore[index]
    server.routes["/v1/chat/completions"].put(sse(text("ok"), usage))
    _, stats = collect(backend.stream(prompt, GREEDY, lambda: False))
    assert stats.prompt_tokens == len(prompt) // 4
    assert abs(backend.count_tokens(prompt) - len(prompt) / 4) <= 2, "the server's rate is used"
