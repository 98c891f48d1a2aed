"""Coming back without reading again (engine/state_cache.py, engine/state_files.py): a headless
run's first token beside the bare engine's, a long session resumed by a new process, and what
saving a state after a turn costs the next prompt.

Child processes run with their own cache, data and config folders under the bench's scratch
folder: the user's saved states and history are neither used nor touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.worker import IDLE_BEFORE_SAVING, AgentWorker, ResumeSession, SendPrompt
from tui_agent.bench.engine_bench import GREEDY_AGENT, cold, history_conversation
from tui_agent.bench.figures import Figure, spread
from tui_agent.engine.resident import ResidentModel
from tui_agent.events import Completed, TurnStatistics
from tui_agent.store.sessions import SessionStore
from tui_agent.tools.base import NoTools

QUESTIONS = ("Name a fruit.", "Name a colour.", "Name a river.", "Name a tree.", "Name a bird.")

# The bare engine: a fresh process that loads the model and streams its answer to one prompt
# through llama-cpp-python's own chat completion (the model's template, no tools).
_BARE = """
import sys, llama_cpp
path, n_ctx, threads, flash, prompt = sys.argv[1:]
llama = llama_cpp.Llama(model_path=path, n_ctx=int(n_ctx), n_threads=int(threads),
    n_threads_batch=int(threads), flash_attn=flash == "1", verbose=False)
for chunk in llama.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=8,
        stream=True, temperature=0.0):
    if chunk["choices"][0]["delta"].get("content"):
        print("first", flush=True)
        break
"""


class Scratch:
    """A llamachat home of its own: config, history, saved states, workspace."""

    def __init__(self, root: Path, model: ResidentModel, n_ctx: int) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "work").mkdir(exist_ok=True)
        self.db = root / "history.db"
        self.config = root / "config.toml"
        self.config.write_text(
            f'[model]\nsource = "{model.settings.path}"\nn_ctx = {n_ctx}\n'
            f"n_threads = {model.settings.n_threads}\n"
            f'[history]\ndb_path = "{self.db}"\n'
            f'[tools]\nworkspace_root = "{root / "work"}"\n'
            "[agent]\ntemperature = 0.0\nmax_tokens_per_completion = 8\n"
        )
        self.env = {
            **os.environ,
            "XDG_CACHE_HOME": str(root / "cache"),
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "HF_HUB_OFFLINE": "1",
        }

    def headless(self, *args: str) -> tuple[float, dict[str, dict[str, float]]]:
        """Spawn `llamachat ARGS -p …`: seconds from the spawn to the first text on stdout, and
        its last stream-json record of each type."""
        argv = [sys.executable, "-m", "tui_agent", "--config", str(self.config), *args]
        argv += ["--output-format", "stream-json"]
        return _first_line(argv, self.env, '"text_delta"')


def _first_line(
    argv: list[str], env: dict[str, str], marker: str
) -> tuple[float, dict[str, dict[str, float]]]:
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert child.stdout is not None
    first = 0.0
    records: dict[str, dict[str, float]] = {}
    for line in child.stdout:
        if not first and marker in line:
            first = time.perf_counter() - started
        if line.startswith("{"):
            record = json.loads(line)
            records[record["type"]] = record
    if child.wait(timeout=600) != 0 or not first:
        raise RuntimeError(f"{' '.join(argv[2:5])}… exited {child.returncode} before any text")
    return first, records


def headless_start(model: ResidentModel, scratch: Path, repetitions: int) -> list[Figure]:
    """`llamachat -p` from spawn to first token, against a fresh process of the bare engine."""
    home = Scratch(scratch / "headless", model, model.settings.n_ctx)
    path, settings = str(model.settings.path), model.settings
    bare_argv = [sys.executable, "-c", _BARE, path, str(settings.n_ctx), str(settings.n_threads)]
    bare_argv.append("1" if settings.flash_attn else "0")
    # The first run has nothing saved: it reads the system prompt and the tools, and saves them.
    nothing_saved, _ = home.headless("-p", QUESTIONS[-1])
    agent, bare, restored = [], [], []
    for index in range(repetitions):
        question = QUESTIONS[index % (len(QUESTIONS) - 1)]
        seconds, records = home.headless("-p", question)
        agent.append(seconds)
        restored.append(records["turn_statistics"]["restored_tokens"])
        bare.append(_first_line([*bare_argv, question], home.env, "first")[0])
    a, b = spread(agent), spread(bare)
    section = "Headless start (spawn to first token, a new question each run)"
    return [
        Figure(
            section,
            "llamachat -p",
            a.median,
            "s",
            detail=a.describe("s", 3)
            + f"; {min(restored):.0f}+ tokens (system prompt, tools) restored from disk",
        ),
        Figure(
            section,
            "llamachat -p, nothing saved yet",
            nothing_saved,
            "s",
            detail="the first run on this machine, or with [model] state_disk_mb = 0",
        ),
        Figure(
            section,
            "bare engine (load + chat completion)",
            b.median,
            "s",
            detail=b.describe("s", 3),
        ),
        Figure(section, "llamachat -p ÷ bare engine", a.median / b.median, "", "≤ 1.5"),
    ]


def resume_in_new_process(
    model: ResidentModel, scratch: Path, repetitions: int, history_tokens: int
) -> list[Figure]:
    """`llamachat -r ID -p …` on a long saved session: the first resume reads it all (nothing
    saved yet), the later ones continue from the state the previous one saved."""
    n_ctx = max(model.settings.n_ctx, 2 * history_tokens)
    home = Scratch(scratch / "resume", model, n_ctx)
    conversation = history_conversation(history_tokens, LlamaBackend(model))
    store = SessionStore(home.db)
    try:
        store.create_session(conversation, model.name)
        for message in conversation.messages:
            store.add_message(conversation.id, message)
    finally:
        store.close()
    _, records = home.headless("-r", conversation.id, "-p", "And one more fact?")
    first = records["turn_statistics"]
    ttfts, loads, restored = [], [], []
    for index in range(repetitions):
        _, records = home.headless("-r", conversation.id, "-p", f"Fact number {index}, please?")
        ttfts.append(records["turn_statistics"]["time_to_first_token"])
        restored.append(records["turn_statistics"]["restored_tokens"])
        loads.append(records["model_loaded"]["seconds"])
    states = list((home.root / "cache" / "llamachat" / "states").glob("*/*.state"))
    size = max(p.stat().st_size for p in states)
    tokens = max(restored)
    t = spread(ttfts)
    section = f"Resume a saved session in a new process (~{first['prompt_tokens']:,.0f} tokens)"
    return [
        Figure(
            section,
            "time to first token, state saved",
            t.median,
            "s",
            "≤ 0.5 s",
            t.describe("s", 3) + f"; {min(restored):,.0f} tokens restored",
        ),
        Figure(
            section,
            "time to first token, nothing saved",
            first["time_to_first_token"],
            "s",
            detail="the whole session read again (before saved states, every resume)",
        ),
        Figure(section, "model load (before the prompt)", spread(loads).median, "s"),
        Figure(section, "state size per 1,000 tokens", size / tokens * 1000 / 2**20, "MiB"),
    ]


def save_cost(model: ResidentModel, repetitions: int, history_tokens: int) -> list[Figure]:
    """The next prompt's time to first token when the state was saved after the turn before
    (the worker saves it once idle for IDLE_BEFORE_SAVING s) against saving turned off."""
    backend = LlamaBackend(model)
    cache = model.state_cache
    runs: dict[str, list[float]] = {"saving": [], "off": []}
    saves: list[float] = []
    try:
        for repetition in range(repetitions):
            for variant in ("saving", "off") if repetition % 2 == 0 else ("off", "saving"):
                model.state_cache = cache if variant == "saving" else None
                cold(model)
                worker = AgentWorker(
                    lambda sink: backend,
                    NoTools(),
                    replace(GREEDY_AGENT, max_tokens_per_completion=8),
                ).start()
                try:
                    conversation = history_conversation(
                        history_tokens, backend, f"topic {repetition}"
                    )
                    worker.submit(ResumeSession(conversation))
                    _turn(worker, "And one more?")
                    # A person reads the reply before typing the next prompt.
                    time.sleep(IDLE_BEFORE_SAVING + 0.7)
                    runs[variant].append(_turn(worker, "And another?").time_to_first_token)
                    if variant == "saving" and cache is not None:
                        saves.append(cache.last_copy_seconds)
                finally:
                    worker.stop()
    finally:
        model.state_cache = cache
    on, off = spread(runs["saving"]), spread(runs["off"])
    s = spread(saves)
    section = f"Saving the state after a turn (~{history_tokens:,}-token session)"
    return [
        Figure(
            section, "next prompt's TTFT, saving on", on.median, "s", detail=on.describe("s", 3)
        ),
        Figure(
            section, "next prompt's TTFT, saving off", off.median, "s", detail=off.describe("s", 3)
        ),
        Figure(section, "saving on ÷ off", on.median / off.median, "", "≤ 1.05"),
        Figure(
            section,
            "copying the state out (worker, when idle)",
            s.median,
            "s",
            detail=s.describe("s", 3) + "; the disk write runs on its own thread",
        ),
    ]


def _turn(worker: AgentWorker, text: str) -> TurnStatistics:
    worker.submit(SendPrompt(text))
    stats = None
    while not isinstance(event := worker.events.get(timeout=600), Completed):
        if isinstance(event, TurnStatistics):
            stats = event
    assert stats is not None
    return stats
