"""What serving costs: the same turn through `llamachat serve` (HTTP, server-sent events, a
client reading them) and through the session in-process, alternating.

Each round gets a session of its own, so generation runs on a fresh worker thread each time (see
engine_bench.in_fresh_thread). Times are taken where a client sees them: from sending the prompt
to the first piece of text, and from the first piece to the last.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace

from tui_agent.agent.backend import LlamaBackend
from tui_agent.bench.engine_bench import GREEDY_AGENT, STORY, already_loaded, rate
from tui_agent.bench.figures import Figure, spread
from tui_agent.config import AgentConfig, Config
from tui_agent.engine.resident import ResidentModel
from tui_agent.events import Completed, TextDelta, TurnStatistics
from tui_agent.serve.server import server_thread
from tui_agent.session import Session
from tui_agent.tools.base import NoTools

SECTION = "Serving over HTTP"
_DELTA = 'data: {"type": "response.output_text.delta"'
# A reply cut at the token limit ends "incomplete", as the Responses API says.
_ENDED = ('data: {"type": "response.completed"', 'data: {"type": "response.incomplete"')


def side_by_side(model: ResidentModel, rounds: int, tokens: int) -> list[Figure]:
    settings = replace(GREEDY_AGENT, max_tokens_per_completion=tokens)
    local: list[tuple[float, float]] = []
    served: list[tuple[float, float]] = []
    _in_process(model, settings)  # the prompt's prefix into the cache, for both alike
    for round_ in range(rounds):
        # Taking turns at going first: a machine that slows down (or warms up) over a round
        # weighs on both alike.
        if round_ % 2:
            served.append(_served(model, settings))
            local.append(_in_process(model, settings))
        else:
            local.append(_in_process(model, settings))
            served.append(_served(model, settings))
    rates = [s[1] / loc[1] for s, loc in zip(served, local, strict=True)]
    delays = [(s[0] - loc[0]) * 1000 for s, loc in zip(served, local, strict=True)]
    rate_spread, delay_spread = spread(rates), spread(delays)
    return [
        Figure(
            SECTION,
            "tok/s through serve ÷ in-process",
            rate_spread.median,
            "",
            "≥ 0.95",
            rate_spread.describe("", 3) + f"; {tokens} tokens, the same greedy text",
        ),
        Figure(
            SECTION,
            "first token through serve − in-process",
            delay_spread.median,
            "ms",
            "≤ 20 ms",
            delay_spread.describe("ms")
            + f"; in-process {min(t for t, _ in local) * 1000:.0f} ms at best",
        ),
    ]


def _session(model: ResidentModel, settings: AgentConfig) -> Session:
    config = Config()
    config.agent = settings
    session = Session(config, already_loaded(LlamaBackend(model)), NoTools())
    session.save = False
    return session


def _in_process(model: ResidentModel, settings: AgentConfig) -> tuple[float, float]:
    """(seconds to the first text, tok/s after it) with the session driven directly."""
    session = _session(model, settings)
    session.start()
    first = last = 0.0
    generated = 0
    try:
        while not session.worker or not session.worker.ready.is_set():
            time.sleep(0.001)
        started = time.perf_counter()
        session.send(STORY, settings=settings)
        while True:
            event = session.events.get()
            if isinstance(event, TextDelta):
                last = time.perf_counter()
                first = first or last
            elif isinstance(event, TurnStatistics):
                generated += event.generated_tokens
            elif isinstance(event, Completed):
                break
    finally:
        session.close()
    return first - started, rate(first, last, generated)


def _served(model: ResidentModel, settings: AgentConfig) -> tuple[float, float]:
    """The same through a real server on 127.0.0.1 and a client reading its stream."""
    with server_thread(_session(model, settings)) as url:
        _wait_for_the_model(url)
        body = json.dumps({"input": STORY, "stream": True}).encode()
        request = urllib.request.Request(
            f"{url}/v1/responses", body, {"Content-Type": "application/json"}
        )
        first = last = 0.0
        generated = 0
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            for raw in response:
                line = raw.decode("utf-8")
                if line.startswith(_DELTA):
                    last = time.perf_counter()
                    first = first or last
                elif line.startswith(_ENDED):
                    generated = json.loads(line[6:])["response"]["usage"]["output_tokens"]
    return first - started, rate(first, last, generated)


def _wait_for_the_model(url: str) -> None:
    """Until /health says ready: the turn is timed from there, as the in-process one is."""
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=60) as response:
                if json.load(response)["status"] == "ready":
                    return
        except urllib.error.HTTPError as exc:  # 503 while loading
            if exc.code != 503:
                raise
        time.sleep(0.005)
