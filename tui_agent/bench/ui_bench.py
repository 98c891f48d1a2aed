"""UI costs: streaming into the app vs headless, event-loop lag, first frame, `--version`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace

from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.loop import run_agent_loop
from tui_agent.bench.engine_bench import GREEDY_AGENT, STORY, cold, in_fresh_thread
from tui_agent.bench.figures import Figure, percentile, spread
from tui_agent.config import Config
from tui_agent.engine.resident import ResidentModel
from tui_agent.events import Event, ModelLoaded, TurnStatistics
from tui_agent.tools.base import NoTools

LAG_INTERVAL = 0.01
EARLIER_EXCHANGES = 40
# What an earlier answer in a long session looks like: a paragraph, a list and a code block.
EARLIER_ANSWER = (
    "Here is what the function does, step by step. It reads the file, splits it into lines "
    "and keeps the ones that match.\n\n"
    "1. Open the file with the right encoding\n2. Filter the lines\n3. Return them sorted\n\n"
    "```python\ndef matching(path, word):\n    with open(path) as f:\n"
    "        return sorted(l for l in f if word in l)\n```\n\n"
    "Call it with the path and the word you want."
)


def headless_seconds(backend: LlamaBackend, tokens: int) -> tuple[float, int]:
    events: list[Event] = []
    started = time.perf_counter()
    run_agent_loop(
        backend,
        Conversation(system_prompt="You are a helpful assistant."),
        STORY,
        NoTools(),
        replace(GREEDY_AGENT, max_tokens_per_completion=tokens),
        events.append,
    )
    generated = next(e for e in events if isinstance(e, TurnStatistics)).generated_tokens
    return time.perf_counter() - started, generated


async def _app_run(
    backend: LlamaBackend, tokens: int, earlier: int = 0
) -> tuple[float, list[float]]:
    from tui_agent.ui.app import LlamachatApp
    from tui_agent.ui.controller import ChatController
    from tui_agent.ui.widgets.transcript import AssistantMessage, UserMessage

    config = Config()
    config.agent = replace(GREEDY_AGENT, max_tokens_per_completion=tokens)
    config.ui.theme = "llamachat-dark"

    def loader(spec: str | None):  # type: ignore[no-untyped-def]
        def load(sink):  # type: ignore[no-untyped-def]
            sink(ModelLoaded(backend.name, "", 0.0, backend.n_ctx, ""))
            return backend

        return load

    controller = ChatController(
        config,
        loader,
        NoTools(),
        None,
        initial=Conversation(system_prompt="You are a helpful assistant."),
    )
    app = LlamachatApp(controller, config, extra_theme_dirs=[])
    lags: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.model_ready:
            await pilot.pause(0.01)
        for index in range(earlier):
            await app.transcript.add(UserMessage(f"question {index}: what does this do?"))
            await app.transcript.add(AssistantMessage(EARLIER_ANSWER))
        if earlier:
            app.garbage.fully()  # as the app does when it restores a long session
        await pilot.pause(0.3)  # the app settles after the model loads; nobody types faster
        expected = [time.perf_counter() + LAG_INTERVAL]

        def tick() -> None:
            now = time.perf_counter()
            lags.append(max(0.0, now - expected[0]))
            expected[0] = now + LAG_INTERVAL

        timer = app.set_interval(LAG_INTERVAL, tick)
        started = time.perf_counter()
        app.controller.send(STORY)
        # Poll gently (Pilot.pause would make the harness a busy part of the app); the time is the
        # app's own record of when it showed the end of the reply, not when this loop noticed.
        while app.completed_prompts == 0:
            await asyncio.sleep(0.05)
        elapsed = app.last_completed_at - started
        timer.stop()
    controller.close()
    return elapsed, lags


def streaming(model: ResidentModel, rounds: int, tokens: int) -> list[Figure]:
    """Headless and in-app runs back to back, in rotating order; each app run is divided by the
    headless run of its own round. The ratio is the median of those: this machine's speed drifts
    by ±15% over a minute, and a round sees the same drift on every side. A third run streams
    into a transcript that already holds EARLIER_EXCHANGES exchanges (a long session)."""
    backend = LlamaBackend(model)
    variants = ("headless", "app", "long")
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    all_lags: list[float] = []
    generated = 0
    for round_ in range(rounds):
        for variant in variants[round_ % 3 :] + variants[: round_ % 3]:
            in_fresh_thread(lambda: cold(model))
            if variant == "headless":
                elapsed, generated = in_fresh_thread(lambda: headless_seconds(backend, tokens))
            else:
                earlier = EARLIER_EXCHANGES if variant == "long" else 0
                elapsed, lags = asyncio.run(_app_run(backend, tokens, earlier))
                if variant == "app":
                    all_lags.extend(lags)
            seconds[variant].append(elapsed)
    h, a = spread(seconds["headless"]), spread(seconds["app"])
    ratio = spread([x / y for x, y in zip(seconds["app"], seconds["headless"], strict=True)])
    long = spread([x / y for x, y in zip(seconds["long"], seconds["headless"], strict=True)])
    section = f"UI: streaming a {generated}-token reply into the app (run_test) vs headless"
    lags_ms = [lag * 1000 for lag in all_lags]
    return [
        Figure(section, "headless", h.median, "s", detail=h.describe("s", 2)),
        Figure(section, "in the app", a.median, "s", detail=a.describe("s", 2)),
        Figure(
            section, "app ÷ headless (paired)", ratio.median, "", "≤ 1.05", ratio.describe("", 3)
        ),
        Figure(
            section,
            f"app ÷ headless, {EARLIER_EXCHANGES} earlier exchanges",
            long.median,
            "",
            detail=long.describe("", 3),
        ),
        Figure(section, "event-loop lag p50", percentile(lags_ms, 50), "ms"),
        Figure(section, "event-loop lag p95", percentile(lags_ms, 95), "ms", "≤ 10 ms"),
        Figure(section, "event-loop lag max", max(lags_ms, default=0.0), "ms"),
    ]


def first_frame(repetitions: int) -> Figure:
    """Process start to the first painted frame of the app (headless driver, no model needed yet)."""
    times = []
    for _ in range(repetitions):
        env = {**os.environ, "LLAMACHAT_BENCH_T0": repr(time.time())}
        result = subprocess.run(
            [sys.executable, "-m", "tui_agent.bench.first_frame"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    s = spread(times)
    return Figure("Start-up", "launch to first frame", s.median, "s", "≤ 1 s", s.describe("s", 3))


def version_time(repetitions: int) -> Figure:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tui_agent", "--version"],
            capture_output=True,
            check=True,
            timeout=30,
        )
        times.append(time.perf_counter() - started)
    s = spread(times)
    return Figure("Start-up", "llamachat --version", s.median, "s", "≤ 0.3 s", s.describe("s", 3))
