"""The benchmark that switches the app's drawing on and off inside one reply: its arithmetic on
known token times, and its two parts on the real app with a scripted model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.scripted import ScriptedBackend
from tests.ui.harness import SIZE, wait_until
from tui_agent.bench.drawing_windows import TimedBackend, Window, WindowedApp, window_slowdowns
from tui_agent.bench.ui_bench import bench_app
from tui_agent.engine.generation import Sampling
from tui_agent.events import Completed
from tui_agent.ui.widgets.transcript import AssistantMessage


def steady_tokens(windows: list[Window], rates: dict[bool, float]) -> list[float]:
    """Token times at ``rates[drawing]`` tokens a second through each window."""
    times: list[float] = []
    for window in windows:
        step = 1 / rates[window.drawing]
        t = window.start + step / 2
        while t < window.end:
            times.append(t)
            t += step
    return times


def alternating(count: int, first_drawing: bool = False) -> list[Window]:
    return [Window(i * 1.0, (i + 1) * 1.0, (i % 2 == 0) == first_drawing) for i in range(count)]


def test_each_drawing_window_is_compared_with_the_windows_around_it() -> None:
    # off on off on off on off on: the last one outlasts the reply, three count
    windows = alternating(8)
    times = steady_tokens(windows, {False: 100.0, True: 80.0})
    assert window_slowdowns(times, windows) == pytest.approx([1.25, 1.25, 1.25], rel=0.02)


def test_a_drift_in_speed_cancels_out() -> None:
    """The machine slows down steadily: each window is judged against its own neighbours."""
    windows = alternating(6)
    times: list[float] = []
    for index, window in enumerate(windows):
        rate = (100.0 - 10 * index) * (0.8 if window.drawing else 1.0)
        times += steady_tokens([window], {window.drawing: rate})
    # window 1: neighbours 100 and 80 → 90 against 0.8·90; window 3: 80 and 60 → 70 against 0.8·70
    assert window_slowdowns(times, windows) == pytest.approx([1.25, 1.25], rel=0.03)


def test_windows_at_the_edges_are_not_counted() -> None:
    windows = alternating(5, first_drawing=True)  # on off on off on
    times = steady_tokens(windows, {False: 50.0, True: 50.0})
    assert window_slowdowns(times, windows) == pytest.approx([1.0], rel=0.05)  # window 2 only
    assert window_slowdowns([], windows) == []


def test_a_window_that_outlasts_the_reply_is_not_counted() -> None:
    """The reply ends half-way into window 4: its low rate must not make window 3 look fast."""
    windows = alternating(6)  # off on off on off on
    times = steady_tokens(windows[:4], {False: 50.0, True: 50.0})
    times += steady_tokens([Window(4.0, 4.5, False)], {False: 50.0})
    assert window_slowdowns(times, windows) == pytest.approx([1.0], rel=0.05)  # window 1 only


def test_a_drawing_window_without_tokens_counts_as_a_stall() -> None:
    windows = alternating(4)  # off on off on
    times = steady_tokens([windows[0], windows[2], windows[3]], {False: 50.0, True: 50.0})
    assert window_slowdowns(times, windows) == [math.inf]


def test_the_timed_backend_notes_each_piece_and_passes_everything_through() -> None:
    scripted = ScriptedBackend(["one two three"], piece_size=4)
    timed = TimedBackend(scripted)
    stream = timed.stream("prompt", Sampling(), lambda: False)
    pieces = []
    while True:
        try:
            pieces.append(next(stream))
        except StopIteration as stop:
            stats = stop.value
            break
    assert "".join(pieces) == "one two three"
    assert len(timed.token_times) == len(pieces) == 4
    assert timed.token_times == sorted(timed.token_times)
    assert stats.generated_tokens == 4 and scripted.prompts == ["prompt"]
    assert (timed.name, timed.n_ctx) == (scripted.name, scripted.n_ctx)


async def test_a_windowed_app_leaves_text_waiting_while_it_does_not_draw(tmp_path: Path) -> None:
    backend = ScriptedBackend(["A reply that waits for the app to draw it."])
    app = bench_app(TimedBackend(backend), 100, WindowedApp)
    queued = app.session.events.queue
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_ready, what="the model")
        app.drawing = False
        app.session.send("hello")
        await wait_until(
            pilot,
            lambda: any(isinstance(event, Completed) for event in list(queued)),
            what="the whole reply in the queue",
        )
        await app.pump_events()  # a pump tick while not drawing: the text stays queued
        await pilot.pause()
        assert not app.query(AssistantMessage) and app.completed_prompts == 0
        app.drawing = True
        await wait_until(pilot, lambda: app.completed_prompts == 1, what="the reply drawn")
        assert app.query_one(AssistantMessage).text == "A reply that waits for the app to draw it."
    app.session.close()
