"""Engine-side comparisons on the one resident model: the agent loop against bare
llama-cpp-python and a raw ctypes decode loop, prefix reuse, session switches, HTTP, memory."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from tui_agent.agent.backend import LlamaBackend, ModelBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.loop import run_agent_loop
from tui_agent.agent.worker import AgentWorker, BackendFactory, NewSession, SendPrompt
from tui_agent.bench.figures import Figure, spread
from tui_agent.config import AgentConfig
from tui_agent.engine.resident import ResidentModel, current_rss
from tui_agent.events import Completed, Event, EventSink, ModelLoaded, TurnStatistics
from tui_agent.tools.base import CallContext, NoTools, ToolCall, ToolOutcome, ToolSpec

_T = TypeVar("_T")
STORY = "Write a very long, detailed story about a dragon who learns to cook, in many paragraphs."
# The same sampling for every variant: greedy, fixed seed, no penalties.
GREEDY_SAMPLING = {
    "temperature": 0.0,
    "top_k": 1,
    "top_p": 1.0,
    "min_p": 0.0,
    "repeat_penalty": 1.0,
    "seed": 0,
}
GREEDY_AGENT = AgentConfig(**GREEDY_SAMPLING, auto_compact=False, max_iterations=1)  # type: ignore[arg-type]


def in_fresh_thread(action: Callable[[], _T]) -> _T:
    """Run action on a new thread that ends with it.

    llama.cpp is built with OpenMP here: every thread that calls into it gets its own pool of
    worker threads, which lives as long as that thread. Two live pools fight over the cores (the
    same generation measured 1.8x slower), so every measurement generates on a thread of its own,
    as the app does on its agent worker thread.
    """
    result: list[_T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="llamachat-bench")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def already_loaded(backend: ModelBackend) -> Callable[[str | None], BackendFactory]:
    """A session's backend loader for a backend the bench holds: it says the model loaded, as a
    real loader does (the app's status bar and the server's /health wait for that)."""

    def load(sink: EventSink) -> ModelBackend:
        sink(ModelLoaded(backend.name, "", 0.0, backend.n_ctx, ""))
        return backend

    return lambda spec: load


def cold(model: ResidentModel) -> None:
    """Forget the KV cache and the saved states, so the next prompt is evaluated from scratch
    (the bench keeps its states in its own folder: see runner.run)."""
    import llama_cpp

    if model.state_cache is not None:
        model.state_cache.clear()
        if model.state_cache.shelf is not None:
            model.state_cache.shelf.clear()
    llama = model.llama
    llama.reset()
    memory = llama_cpp.llama_get_memory(llama.ctx)
    if memory is not None:
        llama_cpp.llama_memory_clear(memory, True)


def rate(first: float, last: float, tokens: int) -> float:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


class OfferedTools:
    """Tools offered to the model, so the lazy grammar watches for a call as in a chat; a story
    never calls them."""

    def specs(self) -> list[ToolSpec]:
        path = {"type": "object", "properties": {"path": {"type": "string"}}}
        return [
            ToolSpec("read_file", "Read a text file.", {**path, "required": ["path"]}),
            ToolSpec("list_dir", "List a directory.", path),
        ]

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        return ToolOutcome(False, "not available in the benchmark")


def agent_rate(backend: ModelBackend, prompt: str, tokens: int) -> float:
    events: list[Event] = []
    config = replace(GREEDY_AGENT, max_tokens_per_completion=tokens)
    run_agent_loop(
        backend,
        Conversation(system_prompt="You are a helpful assistant."),
        prompt,
        OfferedTools(),
        config,
        events.append,
    )
    stats = next(e for e in events if isinstance(e, TurnStatistics))
    return stats.tokens_per_second


def timed_stream(model: ResidentModel, prompt: str, tokens: int) -> tuple[float, float]:
    """Bare llama-cpp-python streaming, greedy: (time to first token, decode tok/s)."""
    started = time.perf_counter()
    stream = model.llama.create_completion(
        prompt, max_tokens=tokens, stream=True, **GREEDY_SAMPLING
    )
    first = last = 0.0
    count = 0
    for chunk in stream:
        if chunk["choices"][0].get("finish_reason"):
            continue
        last = time.perf_counter()
        first = first or last
        count += 1
    return first - started, rate(first, last, count)


def raw_rate(model: ResidentModel, prompt_text: str, tokens: int) -> float:
    """The practical limit: llama.cpp's C API from a tight loop (sample greedy, decode one token)."""
    import llama_cpp

    llama = model.llama
    cold(model)
    ids = llama.tokenize(prompt_text.encode("utf-8"), add_bos=True, special=True)
    ctx = llama.ctx
    batch = (llama_cpp.llama_token * len(ids))(*ids)
    llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(batch, len(ids)))
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    one = (llama_cpp.llama_token * 1)()
    first = last = 0.0
    count = 0
    try:
        for _ in range(tokens):
            token = llama_cpp.llama_sampler_sample(chain, ctx, -1)
            last = time.perf_counter()
            first = first or last
            count += 1
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            one[0] = token
            llama_cpp.llama_decode(
                ctx,
                llama_cpp.llama_batch_get_one(
                    ctypes.cast(one, ctypes.POINTER(llama_cpp.llama_token)), 1
                ),
            )
    finally:
        llama_cpp.llama_sampler_free(chain)
        cold(model)  # the Python side's idea of the cache no longer matches it
    return rate(first, last, count)


def generation(model: ResidentModel, repetitions: int, tokens: int) -> list[Figure]:
    backend = LlamaBackend(model)
    # The bare and raw variants read the agent's own prompt, tools included (a longer prompt
    # decodes slower, ~8% here): the ratio is what the loop itself costs.
    conversation = Conversation(system_prompt="You are a helpful assistant.")
    conversation.append(Message("user", STORY))
    specs = OfferedTools().specs()
    prompt_text = backend.render(conversation.for_template(specs, backend.tool_format), specs)
    runs: dict[str, list[float]] = {"agent": [], "bare": [], "raw": []}
    order = list(runs)
    for repetition in range(repetitions):
        for variant in (
            order[repetition % 3 :] + order[: repetition % 3]
        ):  # alternate who goes first
            cold(model)
            if variant == "agent":
                runs[variant].append(agent_rate(backend, STORY, tokens))
            elif variant == "bare":
                runs[variant].append(timed_stream(model, prompt_text, tokens)[1])
            else:
                runs[variant].append(raw_rate(model, prompt_text, tokens))
    agent, bare, raw = (spread(runs[k]) for k in order)
    section = (
        f"Generation ({tokens} tokens, greedy, {model.settings.n_threads} threads, decode rate)"
    )
    return [
        Figure(
            section,
            "agent loop (tools offered)",
            agent.median,
            "tok/s",
            detail=agent.describe("tok/s"),
        ),
        Figure(
            section,
            "bare llama-cpp-python stream",
            bare.median,
            "tok/s",
            detail=bare.describe("tok/s"),
        ),
        Figure(
            section, "raw ctypes decode loop", raw.median, "tok/s", detail=raw.describe("tok/s")
        ),
        Figure(
            section,
            "agent ÷ bare",
            agent.median / bare.median if bare.median else None,
            "",
            "≥ 0.97",
        ),
        Figure(
            section, "agent ÷ raw", agent.median / raw.median if raw.median else None, "", "≥ 0.95"
        ),
    ]


def history_conversation(
    target_tokens: int,
    backend: ModelBackend,
    topic: str = "the sea",
    system: str = "You are a helpful assistant.",
) -> Conversation:
    """A conversation of about target_tokens tokens of synthetic but plausible history."""
    conversation = Conversation(system_prompt=system)
    turn = 0
    # Rendered as a chat without tools is ("tagged" adds nothing when there are none).
    while (
        backend.count_tokens(backend.render(conversation.for_template([], "tagged"), []))
        < target_tokens
    ):
        conversation.append(
            Message(
                "user", f"Question {turn} about {topic}: tell me one more fact, with some detail."
            )
        )
        conversation.append(
            Message(
                "assistant",
                f"Fact {turn} about {topic}: " + "it is vast, deep and full of life; " * 6,
            )
        )
        turn += 1
    return conversation


def ttft(backend: ModelBackend, conversation: Conversation, text: str) -> float:
    events: list[Event] = []
    run_agent_loop(
        backend,
        conversation,
        text,
        NoTools(),
        replace(GREEDY_AGENT, max_tokens_per_completion=8),
        events.append,
    )
    return next(e for e in events if isinstance(e, TurnStatistics)).time_to_first_token


def idle(backend: LlamaBackend) -> None:
    """What the worker does once idle after a turn, while the user reads: save the state."""
    backend.keep_state()
    backend.finish_saving()


def prefix_reuse(model: ResidentModel, repetitions: int, history_tokens: int) -> list[Figure]:
    backend = LlamaBackend(model)
    colds, follows, switches = [], [], []
    for _ in range(repetitions):
        a = history_conversation(history_tokens, backend, "the sea")
        b = history_conversation(history_tokens, backend, "the mountains")
        cold(model)
        colds.append(ttft(backend, a, "And one more?"))
        follows.append(ttft(backend, a, "One last fact?"))
        idle(backend)
        ttft(backend, b, "And the mountains?")  # switch to session B
        idle(backend)
        switches.append(ttft(backend, a, "Back to the sea: one more?"))  # and back: restored
    c, f, s = spread(colds), spread(follows), spread(switches)
    section = f"Prefix reuse (~{history_tokens:,}-token history, time to first token)"
    return [
        Figure(section, "cold turn", c.median, "s", detail=c.describe("s", 3)),
        Figure(section, "follow-up turn", f.median, "s", detail=f.describe("s", 3)),
        Figure(
            section, "follow-up ÷ cold", f.median / c.median if c.median else None, "", "≤ 0.05"
        ),
        Figure(
            section,
            "switch back ÷ cold",
            s.median / c.median if c.median else None,
            "",
            "≤ 0.05",
        ),
        Figure(
            section,
            "switch back to another session",
            s.median,
            "s",
            detail=s.describe("s", 3)
            + (
                "; restored from the state saved when the worker went idle after its turn"
                if model.state_cache is not None
                else "; the prompt is re-evaluated ([model] state_cache_mb = 0)"
            ),
        ),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory(model: ResidentModel, sessions: int) -> list[Figure]:
    backend = LlamaBackend(model)
    worker = AgentWorker(
        lambda sink: backend, NoTools(), replace(GREEDY_AGENT, max_tokens_per_completion=16)
    ).start()
    readings: list[int] = []

    def one_session(index: int) -> None:
        worker.submit(NewSession())
        worker.submit(SendPrompt(f"Say the number {index}."))
        while not isinstance(worker.events.get(timeout=120), Completed):
            pass
        readings.append(current_rss())

    try:
        for index in range(sessions):
            one_session(index)
    finally:
        worker.stop()
    section = "Memory (one resident model shared by every session)"
    return [
        Figure(section, "RSS after 1 session", readings[0] / 2**20, "MiB"),
        Figure(section, f"RSS after {sessions} sessions", readings[-1] / 2**20, "MiB"),
        Figure(section, f"RSS {sessions} ÷ RSS 1", readings[-1] / readings[0], "", "≤ 1.05"),
    ]


def machine_description() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
            cpu,
        )
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"
