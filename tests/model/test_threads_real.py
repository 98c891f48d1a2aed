"""Threads that yield on a busy CPU, with the real demo model and real busy processes: fewer
threads beside them, all of them again once they stop, the same greedy text either way."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tui_agent.bench.busy_cpu import competitors
from tui_agent.bench.engine_bench import STORY
from tui_agent.config import ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.generation import GREEDY, collect, stream_completion

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

PROMPT = f"<|im_start|>user\n{STORY}<|im_end|>\n<|im_start|>assistant\n"


def test_fewer_threads_beside_busy_processes_and_the_same_text(demo_gguf: Path) -> None:
    threads = os.cpu_count() or 1
    if threads < 2:
        pytest.skip("one core: there is no thread to give up")
    model = resident.get_resident_model(
        demo_gguf, ModelConfig(n_ctx=1024, n_threads=threads, state_cache_mb=0, state_disk_mb=0)
    )
    governor = model.threads
    assert governor is not None, "on by default on Linux"
    sampling = replace(GREEDY, max_tokens=150)  # a story: seconds of tokens to sample
    idle_text, _ = collect(stream_completion(model, PROMPT, sampling))
    with competitors():
        busy_text, busy = collect(stream_completion(model, PROMPT, sampling))
        assert busy.busy_cores >= 1.0, "the busy processes were seen"
        assert governor.current < threads, "and threads given up to them"
    again_text, again = collect(stream_completion(model, PROMPT, sampling))
    assert again.busy_cores < busy.busy_cores
    assert busy_text == idle_text == again_text, "the thread count never changes the text"


def test_off_keeps_every_thread(demo_gguf: Path) -> None:
    model = resident.get_resident_model(
        demo_gguf, ModelConfig(n_ctx=1024, n_threads=2, adaptive_threads=False)
    )
    assert model.threads is None
