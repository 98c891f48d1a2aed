"""Prompt-lookup drafting (engine/drafting.py) side by side with plain decoding: an edit-heavy
turn (a file read by a tool, returned with one change) and a plain chat turn, greedy, each run
from a cold cache, the two settings alternating."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from tui_agent.agent.backend import LlamaBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.bench.engine_bench import GREEDY_SAMPLING, STORY, cold
from tui_agent.bench.figures import Figure, spread
from tui_agent.engine.generation import Sampling, TurnStats, collect
from tui_agent.engine.resident import ResidentModel, current_rss

COPIED_ENOUGH = 0.5  # of the reply's lines, for the edit-heavy turn to be one
EDIT_REQUEST = "Return the whole file with read_settings renamed to load_settings."
SETTINGS_PY = '''\
"""Settings files: one key = value per line, # starts a comment."""

from pathlib import Path

DEFAULTS = {"theme": "dark", "font_size": "12", "autosave": "yes"}


class SettingsError(ValueError):
    """A settings file that cannot be read: says which line and why."""


def read_settings(path):
    """The settings in the file at path, over the defaults."""
    settings = dict(DEFAULTS)
    seen = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line:
                raise SettingsError(f"line {number}: expected key = value, got {line!r}")
            key, value = (part.strip() for part in line.split("=", 1))
            if key in seen:
                raise SettingsError(f"line {number}: {key} is set twice")
            seen.add(key)
            settings[key] = value
    return settings


def write_settings(path, settings):
    """Write the settings that differ from the defaults, sorted by key."""
    lines = [
        f"{key} = {value}"
        for key, value in sorted(settings.items())
        if DEFAULTS.get(key) != value
    ]
    Path(path).write_text("\\n".join(lines) + "\\n", encoding="utf-8")


def merged(base, changes):
    """The base settings with the changes applied; a change to None removes a key."""
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = str(value)
    return result


def font_size(settings):
    """The font size as a number, whatever the file says."""
    try:
        return max(6, min(int(settings.get("font_size", "12")), 72))
    except ValueError:
        return 12
'''


def edit_prompt(backend: LlamaBackend) -> str:
    """The file in the prompt once, and a request to return it changed. Pasted by the user
    rather than read by a tool: the demo model answers a tool's file with a loop of one
    sentence, and a bigger model copies either way."""
    conversation = Conversation(system_prompt="You are a helpful coding assistant.")
    conversation.append(
        Message("user", f"Here is settings.py:\n```python\n{SETTINGS_PY}```\n{EDIT_REQUEST}")
    )
    return backend.render(conversation.for_template([], backend.tool_format), [])


def copied_share(reply: str) -> float:
    """The share of the reply's non-blank lines that are lines of the file: how much of the
    reply is the copy drafting is for (a model that loops or explains scores low)."""
    lines = [line for line in reply.splitlines() if line.strip()]
    known = set(SETTINGS_PY.splitlines())
    return sum(line in known for line in lines) / len(lines) if lines else 0.0


def chat_prompt(backend: LlamaBackend) -> str:
    """A story: nothing to copy (a small model repeats itself in long ones, which drafting
    then speeds up too)."""
    conversation = Conversation(system_prompt="You are a helpful assistant.")
    conversation.append(Message("user", STORY))
    return backend.render(conversation.for_template([], backend.tool_format), [])


@contextmanager
def drafting(model: ResidentModel, on: bool) -> Iterator[None]:
    was = model.drafting
    model.drafting = on
    try:
        yield
    finally:
        model.drafting = was


def _turn(model: ResidentModel, prompt: str, sampling: Sampling) -> tuple[float, str, TurnStats]:
    cold(model)
    started = time.perf_counter()
    text, stats = collect(LlamaBackend(model).stream(prompt, sampling, lambda: False))
    return time.perf_counter() - started, text, stats


def side_by_side(model: ResidentModel, rounds: int, tokens: int) -> list[Figure]:
    """Whole reply time per token generated, prompt included (the same as the whole reply
    time when both settings write the same reply; greedy text may part at a near-tie)."""
    backend = LlamaBackend(model)
    sampling = replace(Sampling(**GREEDY_SAMPLING), max_tokens=tokens)  # type: ignore[arg-type]
    turns = {"edit": edit_prompt(backend), "chat": chat_prompt(backend)}
    per_token: dict[tuple[str, bool], list[float]] = {
        (t, on): [] for t in turns for on in (False, True)
    }
    ttft: dict[tuple[str, bool], list[float]] = {key: [] for key in per_token}
    rss: dict[bool, int] = {False: 0, True: 0}
    taken: dict[str, list[tuple[int, int]]] = {t: [] for t in turns}
    same: dict[str, list[bool]] = {t: [] for t in turns}
    generated: dict[str, list[int]] = {t: [] for t in turns}
    copied: dict[str, list[float]] = {t: [] for t in turns}
    for round_ in range(rounds):
        for turn, prompt in turns.items():
            texts = {}
            for on in (bool(round_ % 2), not round_ % 2):  # alternate who goes first
                with drafting(model, on):
                    seconds, texts[on], stats = _turn(model, prompt, sampling)
                per_token[turn, on].append(seconds / max(stats.generated_tokens, 1))
                ttft[turn, on].append(stats.time_to_first_token)
                rss[on] = max(rss[on], current_rss())
                if on:
                    taken[turn].append((stats.drafted_tokens, stats.accepted_tokens))
                    generated[turn].append(stats.generated_tokens)
            same[turn].append(texts[True] == texts[False])
            copied[turn].append(copied_share(texts[True]))
    section = f"Drafting (prompt lookup; greedy, up to {tokens} tokens, cold cache)"
    figures = []
    for turn, label, target in (
        ("edit", "edit-heavy turn", "≥ 1.5"),
        ("chat", "chat turn", "≥ 0.97"),
    ):
        ratios = [
            off / on for off, on in zip(per_token[turn, False], per_token[turn, True], strict=True)
        ]
        ratio = spread(ratios)
        drafted = sum(d for d, _ in taken[turn])
        accepted = sum(a for _, a in taken[turn])
        detail = (
            f"{ratio.describe('', 2)}; guessed {drafted:,} tokens, {accepted:,} taken;"
            f" replies of {min(generated[turn])}–{max(generated[turn])} tokens;"
            f" same text in {sum(same[turn])} of {len(same[turn])} rounds"
        )
        share = min(copied[turn])
        if turn == "edit" and share < COPIED_ENOUGH:
            # No verdict on a turn that is not the one the target is about.
            target = ""
            detail += (
                f"; the model did not return the file ({share:.0%} of its lines are the file's):"
                " measure with one that does: `llamachat bench -m MODEL --only drafting`"
            )
        figures.append(Figure(section, f"{label}: reply time without ÷ with", ratio.median, "",
                              target, detail))  # fmt: skip
    first = spread(
        [on / off for off, on in zip(ttft["edit", False], ttft["edit", True], strict=True)]
    )
    figures.append(
        Figure(section, "edit-heavy turn: first token with ÷ without", first.median, "", "≤ 1.05",
               first.describe("", 3))
    )  # fmt: skip
    figures.append(
        Figure(section, "RSS with ÷ without", rss[True] / rss[False], "", "≤ 1.05",
               f"{rss[True] / 2**20:,.0f} MiB vs {rss[False] / 2**20:,.0f} MiB")
    )  # fmt: skip
    figures.append(batch_ceiling(model, section))
    return figures


def batch_ceiling(model: ResidentModel, section: str) -> Figure:
    """What drafting can gain at the most on this CPU: 16 tokens in one batch (logits at every
    position) against the time of one token alone. Memory-bound machines (big models, GPUs)
    run a batch in little more than one token's time; small models on few cores do not."""
    llama = model.llama
    cold(model)
    prompt = llama.tokenize(SETTINGS_PY.encode("utf-8"), add_bos=True)
    llama.eval(prompt[:256])
    times = {}
    for size in (1, 16):
        best = float("inf")
        for _ in range(3):
            llama._ctx.kv_cache_seq_rm(-1, 256, -1)
            llama._batch.set_batch(prompt[256 : 256 + size], n_past=256, logits_all=True)
            started = time.perf_counter()
            llama._ctx.decode(llama._batch)
            best = min(best, time.perf_counter() - started)
        times[size] = best
    cold(model)
    ceiling = 16 * times[1] / times[16]
    return Figure(
        section,
        "ceiling: 16 tokens one by one ÷ in one batch",
        ceiling,
        "",
        detail=f"one token {times[1] * 1000:.1f} ms, a batch of 16 {times[16] * 1000:.1f} ms",
    )
