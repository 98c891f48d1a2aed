"""Quitting, cancelling and switching while the real model reads a long prompt in.

Each case runs in its own process: freeing a llama.cpp model under a thread that still
evaluates a prompt kills the process (SIGSEGV, exit -11), which a test in this process could not
report. Before the abort flag, all three crashed or took the whole prompt's time to stop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.model

# One thread and ~6,000 prompt tokens: reading the prompt in takes several seconds here.
SETUP = textwrap.dedent(
    """
    import json, sys, time
    from tui_agent.session import llama_backend_loader
    from tui_agent.agent.worker import AgentWorker, SendPrompt
    from tui_agent.config import AgentConfig, Config, ModelConfig
    from tui_agent.engine import resident
    from tui_agent.events import Completed, Error, TurnStatistics
    from tui_agent.models.sources import demo_model_path
    from tui_agent.tools.base import NoTools

    def worker(n_ctx=8192):
        config = Config(model=ModelConfig(source=str(demo_model_path()), n_ctx=n_ctx, n_threads=1))
        events = []
        w = AgentWorker(llama_backend_loader(config, None), NoTools(), AgentConfig(),
                        sink=events.append).start()
        assert w.ready.wait(120)
        return w, events

    LONG = "Summarize this: " + " ".join(f"word{i}" for i in range(1250))
    w, events = worker()
    w.submit(SendPrompt(LONG))
    time.sleep(1.0)
    assert not any(isinstance(e, TurnStatistics) for e in events), "still reading the prompt"
    started = time.monotonic()
    """
)


def run(body: str) -> dict[str, object]:
    script = SETUP + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-2000:]}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_quit_while_a_long_prompt_is_read_in() -> None:
    result = run(
        """
        w.stop(timeout=5)
        stopped = time.monotonic() - started
        resident.unload_resident_model()
        print(json.dumps({"stopped": stopped, "alive": w._thread.is_alive(),
                          "ended": [e.reason for e in events if isinstance(e, Completed)]}))
        """
    )
    assert result["stopped"] < 1.0 and result["alive"] is False, result
    assert result["ended"] == ["cancelled"]


def test_cancel_mid_prompt_then_the_next_prompt_is_answered() -> None:
    result = run(
        """
        w.cancel()
        while not any(isinstance(e, Completed) for e in events):
            time.sleep(0.01)
        stopped = time.monotonic() - started
        events.clear()
        w.submit(SendPrompt("Say hello."))
        while not any(isinstance(e, Completed) for e in events):
            time.sleep(0.05)
        [done] = [e for e in events if isinstance(e, Completed)]
        generated = sum(e.generated_tokens for e in events if isinstance(e, TurnStatistics))
        w.stop()
        print(json.dumps({"stopped": stopped, "reason": done.reason, "generated": generated}))
        """
    )
    assert result["stopped"] < 1.0, result
    assert result["reason"] == "done" and int(result["generated"]) > 0  # type: ignore[call-overload]


def test_unload_and_switch_under_a_running_prompt() -> None:
    """The model is freed (a switch to another, or the exit) while the worker still uses it:
    the unload interrupts it, waits for it to let go, and only then frees."""
    result = run(
        """
        resident.unload_resident_model()
        unloaded = time.monotonic() - started
        while not any(isinstance(e, Completed) for e in events):
            time.sleep(0.01)
        other, other_events = worker(n_ctx=2048)  # a different model load, the old one gone
        other.submit(SendPrompt("Say hello."))
        while not any(isinstance(e, Completed) for e in other_events):
            time.sleep(0.05)
        reasons = [e.reason for e in other_events if isinstance(e, Completed)]
        w.stop(); other.stop()
        print(json.dumps({"unloaded": unloaded, "reasons": reasons}))
        """
    )
    assert result["unloaded"] < 1.0 and result["reasons"] == ["done"], result
