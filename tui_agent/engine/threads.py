"""Fewer llama.cpp threads while other programs keep the CPU busy.

llama.cpp's threads wait for each other at every step of a token by spinning. On a machine whose
cores other programs use too (a browser, a compiler), a thread that is not scheduled holds up the
others: measured here on two cores beside two busy processes, the demo model fell from ~100 tok/s
to 25 tok/s, at times to 0.8 (a token every 1.4 s). With as many threads as there are cores the
others leave free, it kept 50 tok/s — its fair share — while on an idle machine it keeps every
thread. Switching between tokens is safe: the text is the same with any thread count.

How busy the others are comes from Linux's /proc/stat (all cores' busy time) less this process's
own CPU time, over the last quarter second. A prompt is read with the threads the last tokens used
when they ran in the last two seconds, else with a guess from /proc/loadavg's runnable threads of
other processes. Elsewhere nothing changes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

SAMPLE_SECONDS = 0.25
# A measurement this recent still describes the machine when the next prompt starts.
RECENT_SECONDS = 2.0


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


def task_fields(stat: Path) -> list[str]:
    """A /proc/PID/stat (or task) line's fields after the command name: state first, then
    ppid, …; utime and stime at 11 and 12. The name may hold spaces and parentheses."""
    return stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()


def _runnable_others() -> float:
    """Threads of other programs ready to run now, for the first guess: /proc/loadavg's count
    of runnable threads, less this process's own (llama.cpp's may still be spinning)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            running = int(loadavg.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    own = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            own += task_fields(task / "stat")[0] == "R"
        except (OSError, IndexError):
            continue
    return max(0.0, running - max(own, 1))


class ThreadGovernor:
    """Sets the context's thread count from how many cores other programs leave free."""

    def __init__(self, llama: Any, threads: int, cores: int | None = None) -> None:
        self.llama = llama
        self.threads = threads  # the most it may use ([model] n_threads)
        self.cores = cores or os.cpu_count() or 1
        self.current = threads
        self.busiest = 0.0  # the most cores others used since start()
        self._last: tuple[float, float, float] | None = None

    @property
    def works(self) -> bool:
        return _busy_seconds() is not None

    def start(self) -> None:
        """Before a prompt (read with the threads chosen now): the last measurement when it is
        recent, else the threads of others that stay runnable over a few milliseconds (one that
        flickers there is not a program keeping a core busy)."""
        self.busiest = 0.0
        now = self._sample()
        previous, self._last = self._last, now
        if previous is not None and now is not None and now[0] - previous[0] <= RECENT_SECONDS:
            return  # the threads the last tokens ran with still fit
        readings = []
        for _ in range(3):
            readings.append(_runnable_others())
            time.sleep(0.001)
        self._use(self.cores - min(readings))

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
