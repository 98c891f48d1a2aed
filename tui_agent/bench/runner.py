"""Run every benchmark section in one process on one resident model and collect the figures."""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui_agent.agent.backend import LlamaBackend
from tui_agent.bench import (
    busy_cpu,
    drafting_bench,
    drawing_windows,
    engine_bench,
    history_bench,
    remote_bench,
    resume_bench,
    serve_bench,
    ui_bench,
)
from tui_agent.bench.figures import Figure
from tui_agent.config import Config
from tui_agent.engine.remote import is_remote
from tui_agent.engine.resident import get_resident_model
from tui_agent.errors import LlamachatError
from tui_agent.models.sources import resolve_spec


@dataclass(frozen=True)
class Plan:
    repetitions: int
    tokens: int
    ui_tokens: int
    ui_rounds: int
    window_runs: int
    window_tokens: int
    history_tokens: int
    sessions: int
    history_sessions: int
    startup_runs: int
    resume_tokens: int
    draft_rounds: int
    draft_tokens: int
    serve_rounds: int
    busy_rounds: int


FULL = Plan(
    repetitions=5,
    tokens=256,
    ui_tokens=320,
    ui_rounds=16,
    window_runs=5,
    window_tokens=1000,
    history_tokens=1500,
    sessions=20,
    history_sessions=10_000,
    startup_runs=5,
    resume_tokens=4000,
    draft_rounds=3,
    draft_tokens=700,
    # A ratio of two noisy rates: one round of each measured 0.83–1.13 here.
    serve_rounds=12,
    busy_rounds=5,
)
# Quick: every section runs, with the least that still gives each figure (a look at the shape
# of the table; the test suite runs it).
QUICK = Plan(
    repetitions=2,
    tokens=96,
    ui_tokens=150,
    ui_rounds=2,
    window_runs=1,
    # Enough windows for a figure even on a machine three times as fast as this one.
    window_tokens=1000,
    history_tokens=1500,
    sessions=20,
    history_sessions=1_000,
    startup_runs=2,
    resume_tokens=1500,
    draft_rounds=1,
    draft_tokens=400,
    serve_rounds=2,
    busy_rounds=1,
)


def run(
    config: Config,
    model_spec: str | None,
    plan: Plan,
    progress: Callable[[str], None],
    only: frozenset[str] = frozenset(),
) -> list[Figure]:
    """Every section, or those named in ``only``."""
    spec = model_spec or config.model.source or None
    if is_remote(spec):
        return _run_remote(config, str(spec), plan, progress, only)
    # The steps name the model and the scratch folder made below: a misspelt --only is said
    # before the model loads.
    # Generation runs on fresh threads only (see engine_bench.in_fresh_thread): the main thread
    # must never call into llama.cpp, or its OpenMP pool would slow every later measurement.
    fresh = engine_bench.in_fresh_thread
    reps = max(plan.repetitions - 1, 1)
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        (
            "generation",
            lambda: fresh(lambda: engine_bench.generation(model, plan.repetitions, plan.tokens)),
        ),
        (
            "prefix reuse",
            lambda: fresh(lambda: engine_bench.prefix_reuse(model, reps, plan.history_tokens)),
        ),
        (
            "in-process vs llama-server",
            lambda: fresh(
                lambda: remote_bench.side_by_side(
                    model, LlamaBackend(model), plan.history_tokens, plan.tokens
                )
            ),
        ),
        (
            "saving states",
            lambda: fresh(
                lambda: resume_bench.save_cost(model, plan.repetitions, plan.history_tokens)
            ),
        ),
        ("headless start", lambda: resume_bench.headless_start(model, scratch, plan.startup_runs)),
        (
            "resume in a new process",
            lambda: resume_bench.resume_in_new_process(
                model, scratch, plan.startup_runs, plan.resume_tokens
            ),
        ),
        ("busy CPU", lambda: busy_cpu.busy_cpu(model, plan.busy_rounds)),
        (
            "drafting",
            lambda: fresh(
                lambda: drafting_bench.side_by_side(model, plan.draft_rounds, plan.draft_tokens)
            ),
        ),
        (
            "serving over HTTP",
            lambda: serve_bench.side_by_side(model, plan.serve_rounds, plan.tokens),
        ),
        ("UI streaming", lambda: ui_bench.streaming(model, plan.ui_rounds, plan.ui_tokens)),
        (
            "UI drawing windows",
            lambda: [drawing_windows.slowdown(model, plan.window_runs, plan.window_tokens)],
        ),
        (
            "start-up",
            lambda: [
                ui_bench.first_frame(plan.startup_runs),
                ui_bench.version_time(plan.startup_runs),
            ],
        ),
        ("memory", lambda: engine_bench.memory(model, plan.sessions)),
        (
            "history",
            lambda: history_bench.history(scratch, plan.history_sessions, 20, plan.startup_runs),
        ),
    ]
    _check_names([label for label, _ in steps], only)
    _, path = resolve_spec(spec)
    model = get_resident_model(path, config.model)
    scratch = Path(tempfile.mkdtemp(prefix="llamachat-bench-"))
    shelf = model.state_cache.shelf if model.state_cache is not None else None
    if shelf is not None:  # cold() clears them: never the user's own
        shelf.root = scratch / "states"
    try:
        return _sections(steps, progress, only)
    finally:
        if shelf is not None:
            shelf.root = None
        shutil.rmtree(scratch, ignore_errors=True)


def _run_remote(
    config: Config, url: str, plan: Plan, progress: Callable[[str], None], only: frozenset[str]
) -> list[Figure]:
    """The sections that measure a model: generation and prefix reuse, on the server."""
    reps = max(plan.repetitions - 1, 1)
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("generation", lambda: remote_bench.remote_generation(backend, plan.repetitions, plan.tokens)),
        ("prefix reuse", lambda: remote_bench.remote_prefix_reuse(backend, reps, plan.history_tokens)),
    ]  # fmt: skip
    _check_names([label for label, _ in steps], only)
    backend = remote_bench.connect(config, url)
    return _sections(steps, progress, only)


def _check_names(labels: list[str], only: frozenset[str]) -> None:
    if unknown := sorted(only - set(labels)):
        raise LlamachatError(
            f"no bench section named {', '.join(map(repr, unknown))}",
            f"--only takes a comma-separated list of: {', '.join(labels)}",
        )


def _sections(
    steps: list[tuple[str, Callable[[], list[Figure]]]],
    progress: Callable[[str], None],
    only: frozenset[str],
) -> list[Figure]:
    figures: list[Figure] = []
    for label, step in steps:
        if only and label not in only:
            continue
        progress(f"bench: {label}…")
        # Each section starts on a clean heap: garbage a section leaves (the UI section's
        # apps) would otherwise be collected, at a cost, inside the next section's timings.
        gc.collect()
        try:
            figures.extend(step())
        except Exception as exc:  # one broken section must not hide the others
            figures.append(
                Figure(label, f"{label} failed", None, detail=f"{type(exc).__name__}: {exc}")
            )
    return figures


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
