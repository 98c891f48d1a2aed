"""What the app's drawing costs generation, measured inside one long reply.

Two generations of the same reply here run at rates up to ±15% apart (the machine's speed shifts
from run to run, and stays shifted for seconds), so a ratio of two whole runs needs many rounds
to say anything about a few percent. Here the app draws in every other WINDOW_SECONDS window of
one reply and leaves the text waiting in the queue in the others. Each drawing window's token
rate is compared with the mean rate of the two windows around it, which share the run's speed;
the slowdown of many such windows has a narrow interval.

What it leaves out: the work at the start and the end of a reply (mounting the reply's box,
turning the last text into Markdown), which the bracketed whole-run ratio includes.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from tui_agent.agent.backend import LlamaBackend, ModelBackend
from tui_agent.bench.engine_bench import STORY, cold, in_fresh_thread
from tui_agent.bench.figures import Figure, spread
from tui_agent.bench.ui_bench import bench_app
from tui_agent.engine.generation import Sampling, TurnStats
from tui_agent.engine.resident import ResidentModel
from tui_agent.tools.base import ToolSpec
from tui_agent.ui.app import LlamachatApp

WINDOW_SECONDS = 0.6


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    drawing: bool


def window_slowdowns(token_times: Sequence[float], windows: Sequence[Window]) -> list[float]:
    """For each drawing window between two windows without drawing: their mean token rate ÷
    its token rate. ``token_times`` must be sorted; a window that outlasts the reply is not
    counted (its rate would include time with no tokens to make)."""
    if not token_times:
        return []
    windows = [w for w in windows if w.end <= token_times[-1]]
    rates = [_tokens_between(token_times, w.start, w.end) / (w.end - w.start) for w in windows]
    slowdowns = []
    for i in range(1, len(windows) - 1):
        if windows[i].drawing and not windows[i - 1].drawing and not windows[i + 1].drawing:
            around = (rates[i - 1] + rates[i + 1]) / 2
            # A drawing window without a single token stalled generation: infinitely slow.
            slowdowns.append(around / rates[i] if rates[i] else math.inf)
    return slowdowns


def _tokens_between(times: Sequence[float], start: float, end: float) -> int:
    return bisect_left(times, end) - bisect_left(times, start)


class TimedBackend:
    """A backend that notes when each piece of text leaves the model (on the worker thread)."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.n_ctx = backend.n_ctx
        self.tool_format = backend.tool_format
        self.parallel_calls = backend.parallel_calls
        self.token_times: list[float] = []

    def render(self, messages: list[dict[str, Any]], tools: list[ToolSpec]) -> str:
        return self.backend.render(messages, tools)

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def interrupt(self) -> None:
        self.backend.interrupt()

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        force_tools: list[ToolSpec] | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> Generator[str, None, TurnStats]:
        pieces = self.backend.stream(prompt, sampling, should_stop, force_tools, tools)
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                stats: TurnStats = stop.value
                return stats
            self.token_times.append(time.perf_counter())
            yield piece


class WindowedApp(LlamachatApp):
    """The app, with its drawing of streamed text switched by ``drawing``: while it is off,
    events wait in the queue, as they would behind a slow frame."""

    drawing = True

    async def pump_events(self) -> None:
        if self.drawing:
            await super().pump_events()


async def _windowed_run(backend: TimedBackend, tokens: int) -> list[Window]:
    app = bench_app(backend, tokens, WindowedApp)
    windows: list[Window] = []
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.model_ready:
            await pilot.pause(0.01)
        await pilot.pause(0.3)
        app.session.send(STORY)
        while not backend.token_times:  # the prompt is read before any window starts
            await asyncio.sleep(0.05)
        drawing = False
        while app.session.busy:
            app.drawing = drawing
            start = time.perf_counter()
            await asyncio.sleep(WINDOW_SECONDS)
            windows.append(Window(start, time.perf_counter(), drawing))
            drawing = not drawing
        app.drawing = True
        while app.completed_prompts == 0:
            await asyncio.sleep(0.05)
    app.session.close()
    return windows


def slowdown(model: ResidentModel, runs: int, tokens: int) -> Figure:
    slowdowns: list[float] = []
    for _ in range(runs):
        backend = TimedBackend(LlamaBackend(model))
        in_fresh_thread(lambda: cold(model))
        windows = asyncio.run(_windowed_run(backend, tokens))
        slowdowns += window_slowdowns(backend.token_times, windows)
    if not slowdowns:
        raise RuntimeError(
            f"the reply ended before a drawing window had windows on both sides; "
            f"give it more than {tokens} tokens"
        )
    s = spread(slowdowns)
    return Figure(
        f"UI: drawing on and off in {WINDOW_SECONDS}-s windows of one reply (≤ {tokens} tokens)",
        "token rate without drawing ÷ with drawing",
        s.median,
        "",
        detail=s.describe("", 3),
    )
