"""Generation on a busy CPU: llamachat beside one busy process per core, with every thread
(the old default) and with threads that yield to the others (engine/threads.py), against the
same on an idle machine.

Each measurement is a fresh child process (``python -m tui_agent.bench.busy_cpu PATH …``), so
one setting's thread pool never carries into the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from tui_agent.bench.figures import Figure, spread
from tui_agent.engine.resident import ResidentModel
from tui_agent.engine.threads import task_fields

TOKENS = 160
# A collapsed run makes a token every second or more: a child stops after this long.
TIME_LIMIT = 20.0


@contextmanager
def competitors() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One CPU-bound process per core, checked to really take CPU, stopped afterwards."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.5)
        for hog in hogs:
            if _cpu_seconds(hog.pid) < 0.2:
                raise RuntimeError("a competitor process did not get CPU time")
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _cpu_seconds(pid: int) -> float:
    fields = task_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rate(model: ResidentModel, adaptive: bool) -> float:
    settings = model.settings
    result = subprocess.run(
        [sys.executable, "-m", "tui_agent.bench.busy_cpu", str(settings.path),
         str(settings.n_ctx), str(settings.n_threads), "1" if adaptive else "0"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return float(result.stdout.strip().splitlines()[-1])


def busy_cpu(model: ResidentModel, repetitions: int) -> list[Figure]:
    section = f"Generation on a busy CPU (one busy process per core beside it, {TOKENS} tokens)"
    if not os.path.exists("/proc/stat"):
        return [Figure(section, "busy CPU", None, detail="skipped: Linux only")]
    runs: dict[tuple[str, bool], list[float]] = {}
    for condition in ("idle", "busy"):
        with competitors() if condition == "busy" else _nothing():
            for repetition in range(repetitions):
                for adaptive in (False, True) if repetition % 2 == 0 else (True, False):
                    runs.setdefault((condition, adaptive), []).append(_rate(model, adaptive))
    s = {key: spread(values) for key, values in runs.items()}
    new_idle, old_idle = s[("idle", True)].median, s[("idle", False)].median

    def row(name: str, key: tuple[str, bool]) -> Figure:
        return Figure(section, name, s[key].median, "tok/s", detail=s[key].describe("tok/s"))

    return [
        row("idle, every thread (before)", ("idle", False)),
        row("idle, threads that yield", ("idle", True)),
        row("busy, every thread (before)", ("busy", False)),
        row("busy, threads that yield", ("busy", True)),
        Figure(section, "idle: yielding ÷ every thread", new_idle / old_idle, "", "≥ 0.97"),
        Figure(
            section,
            "busy ÷ idle, threads that yield",
            s[("busy", True)].median / new_idle,
            "",
            "≥ 0.4",
            detail="a fair share of 2 cores beside 2 busy processes is 0.5",
        ),
        Figure(section, "busy ÷ idle, every thread", s[("busy", False)].median / old_idle, ""),
    ]


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main() -> None:
    """The child: load the model with the given threads, stream a story, print the decode rate."""
    from tui_agent.agent.backend import LlamaBackend
    from tui_agent.bench.engine_bench import STORY
    from tui_agent.config import ModelConfig
    from tui_agent.engine.generation import GREEDY, collect, stream_completion
    from tui_agent.engine.resident import get_resident_model

    path, n_ctx, threads, adaptive = sys.argv[1:5]
    config = ModelConfig(
        n_ctx=int(n_ctx),
        n_threads=int(threads),
        adaptive_threads=adaptive == "1",
        state_cache_mb=0,
        state_disk_mb=0,
    )
    model = get_resident_model(Path(path), config)
    prompt = LlamaBackend(model).render([{"role": "user", "content": STORY}], [])
    deadline = time.perf_counter() + TIME_LIMIT
    stream = stream_completion(
        model, prompt, replace(GREEDY, max_tokens=TOKENS), lambda: time.perf_counter() > deadline
    )
    print(collect(stream)[1].tokens_per_second, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
