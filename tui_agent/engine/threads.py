"""Fewer llama.cpp threads while other programs keep the CPU busy.

llama.cpp's threads wait for each other at every step of a token by spinning. On a machine whose
cores other programs use too (a browser, a compiler), a thread that is not scheduled holds up the
others: measured here on two cores beside two busy processes, the demo model fell from ~100 tok/s
to 25 tok/s, at times to 0.8 (a token every 1.4 s). With as many threads as there are cores the
others leave free, it kept 50 tok/s — its fair share — while on an idle machine it keeps every
thread. Switching between tokens is safe: the text is the same with any thread count.

How busy the others are comes from Linux's /proc/stat (all cores' busy time) less this process's
own CPU time, over the last quarter second; the first guess, before a prompt is read, is
/proc/loadavg's count of runnable tasks. Elsewhere nothing changes.
"""

from __future__ import annotations

import os
import time
from typing import Any

SAMPLE_SECONDS = 0.25


def _busy_seconds() -> float | None:
    """All cores' busy time since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _runnable_others() -> float:
    """Tasks ready to run now besides this one (/proc/loadavg), for the first guess."""
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            running = int(loadavg.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, running - 1.0)


class ThreadGovernor:
    """Sets the context's thread count from how many cores other programs leave free."""

    def __init__(self, llama: Any, threads: int, cores: int | None = None) -> None:
        self.llama = llama
        self.threads = threads  # the most it may use ([model] n_threads)
        self.cores = cores or os.cpu_count() or 1
        self.current = threads
        self.busy_cores = 0.0  # the others' use in the last sample
        self.busiest = 0.0  # and the most seen since start()
        self._last: tuple[float, float, float] | None = None

    @property
    def works(self) -> bool:
        return _busy_seconds() is not None

    def start(self) -> None:
        """Before a prompt: a first guess from the tasks that are runnable right now."""
        self.busiest = 0.0
        self._last = self._sample()
        self._use(self.cores - _runnable_others())

    def tick(self) -> None:
        """After each token: every quarter second, measure the others and adapt."""
        if self._last is None or time.monotonic() - self._last[0] < SAMPLE_SECONDS:
            return
        sample = self._sample()
        if sample is None:
            return
        (then, busy_then, own_then), (now, busy, own) = self._last, sample
        self._last = sample
        others = max(0.0, (busy - busy_then) - (own - own_then)) / (now - then)
        self.busy_cores = others
        self.busiest = max(self.busiest, others)
        self._use(self.cores - others)

    def _sample(self) -> tuple[float, float, float] | None:
        busy = _busy_seconds()
        return None if busy is None else (time.monotonic(), busy, _own_seconds())

    def _use(self, free_cores: float) -> None:
        wanted = max(1, min(self.threads, round(free_cores)))
        if wanted != self.current:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llama.ctx, wanted, wanted)
            self.current = wanted
