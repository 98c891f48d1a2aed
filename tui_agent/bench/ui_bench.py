"""UI costs: streaming into the app vs headless, event-loop lag, first frame, `--version`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from tui_agent.agent.backend import LlamaBackend, ModelBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.loop import run_agent_loop
from tui_agent.bench.engine_bench import (
    GREEDY_AGENT,
    STORY,
    already_loaded,
    cold,
    in_fresh_thread,
)
from tui_agent.bench.figures import Figure, Spread, percentile, spread
from tui_agent.config import Config
from tui_agent.engine.resident import ResidentModel
from tui_agent.events import Event, TurnStatistics
from tui_agent.tools.base import NoTools

if TYPE_CHECKING:
    from tui_agent.ui.app import LlamachatApp

AppT = TypeVar("AppT", bound="LlamachatApp")

RATIO_TARGET = "≤ 1.05"
LAG_INTERVAL = 0.01
LAG_RUNS = 2
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


class LagProbe:
    """How late a callback due every LAG_INTERVAL runs on the app's event loop.

    A plain loop callback, not a Textual timer: a timer adds a task and a message per tick to
    the loop it measures. Its runs are not the timed ones (100 wake-ups a second cost time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, lags: list[float]) -> None:
        self._loop = loop
        self._lags = lags
        self._due = time.perf_counter() + LAG_INTERVAL
        self._handle = loop.call_later(LAG_INTERVAL, self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self._lags.append(max(0.0, now - self._due))
        self._due = now + LAG_INTERVAL
        self._handle = self._loop.call_later(LAG_INTERVAL, self._tick)

    def stop(self) -> None:
        self._handle.cancel()


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


def bench_app(backend: ModelBackend, tokens: int, app_class: type[AppT]) -> AppT:
    """An app on ``backend`` with nothing else: no tools, no history store, a fresh
    conversation, greedy replies of at most ``tokens`` tokens."""
    from tui_agent.session import Session

    config = Config()
    config.agent = replace(GREEDY_AGENT, max_tokens_per_completion=tokens)
    config.ui.theme = "llamachat-dark"

    session = Session(
        config,
        already_loaded(backend),
        NoTools(),
        None,
        initial=Conversation(system_prompt="You are a helpful assistant."),
    )
    return app_class(session, config, extra_theme_dirs=[])


async def _app_run(
    backend: LlamaBackend, tokens: int, earlier: int = 0, lags: list[float] | None = None
) -> tuple[float, float]:
    """Seconds from sending the prompt to the app painting the end of the reply, and the CPU
    seconds the app's thread spent meanwhile. With ``lags``, a probe records the event loop's
    lateness (its own wake-ups add to both)."""
    from tui_agent.ui.app import LlamachatApp
    from tui_agent.ui.widgets.prompt_input import PromptInput
    from tui_agent.ui.widgets.transcript import AssistantMessage, UserMessage

    app = bench_app(backend, tokens, LlamachatApp)
    session = app.session
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.model_ready:
            await pilot.pause(0.01)
        for index in range(earlier):
            await app.transcript.add(UserMessage(f"question {index}: what does this do?"))
            await app.transcript.add(AssistantMessage(EARLIER_ANSWER))
        if earlier:
            app.garbage.fully()  # as the app does when it restores a long session
        await pilot.pause(0.3)  # the app settles after the model loads; nobody types faster
        probe = LagProbe(asyncio.get_running_loop(), lags) if lags is not None else None
        started, cpu_started = time.perf_counter(), time.thread_time()
        # Sent as the prompt box sends it: the app adds the prompt and the reply's box, then sends.
        app.prompt.post_message(PromptInput.Submitted(STORY))
        # Poll rarely (each wake-up takes the GIL from generation); the time is the app's own
        # record of when it painted the end of the reply, not when this loop noticed.
        while app.completed_prompts == 0:
            await asyncio.sleep(0.25)
        elapsed, cpu = app.last_completed_at - started, app.last_completed_cpu - cpu_started
        if probe is not None:
            probe.stop()
    session.close()
    return elapsed, cpu


def streaming(model: ResidentModel, rounds: int, tokens: int) -> list[Figure]:
    """Each in-app run is divided by the mean of the headless runs just before and after it:
    this machine's speed drifts by ±15% over a minute, and bracketing cancels a steady drift.
    What it cannot cancel (two runs back to back differ by as much) is left to the median of
    many rounds, reported with its 95% interval. A round is headless, app, headless, long: the long run streams into a transcript that
    already holds EARLIER_EXCHANGES exchanges (a long session). The event-loop lag is measured
    in runs of its own, since its probe wakes the loop 100 times a second."""
    backend = LlamaBackend(model)
    generated = 0

    def headless() -> float:
        nonlocal generated
        in_fresh_thread(lambda: cold(model))
        elapsed, generated = in_fresh_thread(lambda: headless_seconds(backend, tokens))
        return elapsed

    def in_app(earlier: int = 0, lags: list[float] | None = None) -> tuple[float, float]:
        in_fresh_thread(lambda: cold(model))
        return asyncio.run(_app_run(backend, tokens, earlier, lags))

    seconds: dict[str, list[float]] = {"headless": [headless()], "app": [], "long": []}
    ratios: dict[str, list[float]] = {"app": [], "long": []}
    cpu_shares: dict[str, list[float]] = {"app": [], "long": []}
    growth: list[float] = []  # each round's long-session share ÷ its empty-session share
    for _ in range(rounds):
        for variant in ("app", "long"):
            elapsed, cpu_seconds = in_app(EARLIER_EXCHANGES if variant == "long" else 0)
            before, after = seconds["headless"][-1], headless()
            seconds[variant].append(elapsed)
            seconds["headless"].append(after)
            ratios[variant].append(elapsed / ((before + after) / 2))
            cpu_shares[variant].append(cpu_seconds / ((before + after) / 2))
        growth.append(cpu_shares["long"][-1] / cpu_shares["app"][-1])
    lags: list[float] = []
    for _ in range(LAG_RUNS):
        in_app(lags=lags)
    h, a = spread(seconds["headless"]), spread(seconds["app"])
    ratio, long = spread(ratios["app"]), spread(ratios["long"])
    cpu, long_cpu = spread(cpu_shares["app"]), spread(cpu_shares["long"])
    grown = spread(growth)
    section = f"UI: streaming a {generated}-token reply into the app (run_test) vs headless"
    lags_ms = [lag * 1000 for lag in lags]
    return [
        Figure(section, "headless", h.median, "s", detail=h.describe("s", 2)),
        Figure(section, "in the app", a.median, "s", detail=a.describe("s", 2)),
        Figure(
            section,
            "app ÷ headless (bracketed)",
            ratio.median,
            "",
            RATIO_TARGET,
            ratio_detail(ratio),
        ),
        Figure(
            section,
            f"app ÷ headless, {EARLIER_EXCHANGES} earlier exchanges",
            long.median,
            "",
            detail=long.describe("", 3),
        ),
        # Each CPU second of the app's thread is taken from generation on a 2-core machine (and
        # its GIL holds up the worker), so this share is about what the app adds to the time.
        Figure(
            section, "app thread CPU ÷ headless time", cpu.median, "", detail=cpu.describe("", 3)
        ),
        Figure(
            section,
            f"app thread CPU ÷ headless time, {EARLIER_EXCHANGES} earlier exchanges",
            long_cpu.median,
            "",
            detail=long_cpu.describe("", 3),
        ),
        Figure(
            section,
            f"app thread CPU, {EARLIER_EXCHANGES} earlier exchanges ÷ none",
            grown.median,
            "",
            "≤ 1.2",
            grown.describe("", 3),
        ),
        Figure(section, "event-loop lag p50", percentile(lags_ms, 50), "ms"),
        Figure(section, "event-loop lag p95", percentile(lags_ms, 95), "ms", "≤ 10 ms"),
        Figure(section, "event-loop lag max", max(lags_ms, default=0.0), "ms"),
    ]


def ratio_detail(ratio: Spread) -> str:
    """The ratio's spread, and whether its interval leaves the verdict to chance: one run here
    varies by ±15% with the machine's speed, so a median near the target can fall either side."""
    detail = ratio.describe("", 3)
    limit = float(RATIO_TARGET.split()[1])
    if ratio.interval is not None and ratio.interval[0] <= limit < ratio.interval[1]:
        detail += "; the interval straddles the target, so this run's verdict is not settled"
    return detail


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
