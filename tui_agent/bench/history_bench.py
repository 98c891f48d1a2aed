"""History at scale: the browser's first page and a full-text search over many sessions."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from pathlib import Path

from tui_agent.bench.figures import Figure, percentile, spread
from tui_agent.store.sessions import SessionStore

TOPICS = [
    "sea",
    "mountain",
    "river",
    "lighthouse",
    "keeper",
    "parser",
    "refactor",
    "build",
    "cache",
    "lock",
    "tower",
    "lamp",
    "dragon",
    "cook",
    "recipe",
    "python",
    "textual",
    "llama",
    "model",
    "token",
    "context",
    "compaction",
    "permission",
    "tool",
    "shell",
    "grep",
    "file",
]


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    """Made-up words after the topic words; drawn with Zipf-like weights, as in real text."""
    letters = "etaoinshrdlcumwfgypbvk"
    return [*TOPICS, *("".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(size))]


def fill(store: SessionStore, sessions: int, messages: int, seed: int = 7) -> None:
    """Bulk-load synthetic sessions in one transaction (the same tables the recorder writes)."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    now = time.time()
    session_rows, entry_rows, fts_rows = [], [], []
    entry_id = 0
    for number in range(sessions):
        session_id = f"{number:012x}"
        updated = now - number * 60
        session_rows.append(
            (
                session_id,
                f"Session {number}: {' '.join(rng.choices(TOPICS, k=5))}",
                updated,
                updated,
                "demo",
                "/tmp",
                "",
                messages,
            )
        )
        for index in range(messages):
            entry_id += 1
            role = "user" if index % 2 == 0 else "assistant"
            text = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(8, 60)))
            entry_rows.append(
                (entry_id, session_id, "message", role, text, json.dumps({}), 0, updated)
            )
            fts_rows.append((entry_id, text))
    with store._lock:
        db = store._db
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO sessions (id, title, created, updated, model, workspace, system_prompt, message_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            session_rows,
        )
        db.executemany(
            "INSERT INTO entries (id, session_id, kind, role, content, data, interrupted, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            entry_rows,
        )
        db.executemany("INSERT INTO entries_fts (rowid, text) VALUES (?, ?)", fts_rows)
        db.execute("COMMIT")


async def _open_browser(store: SessionStore) -> float:
    from textual.app import App
    from textual.widgets import DataTable

    from tui_agent.ui.screens.history import HistoryScreen

    class Host(App[None]):
        pass

    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        started = time.perf_counter()
        screen = HistoryScreen(store)
        await app.push_screen(screen)
        while screen.first_page_at is None:
            await asyncio.sleep(0.001)
        assert screen.query_one(DataTable).row_count > 0
        elapsed = screen.first_page_at - started
        await pilot.pause(0.2)  # let the preview settle before the app closes
        return elapsed


async def _page_through(store: SessionStore, lags: list[float], steps: int = 400) -> None:
    """Hold the cursor key down through the browser (pages load, previews render) while a probe
    records how late the event loop runs."""
    from textual.app import App
    from textual.widgets import DataTable

    from tui_agent.bench.ui_bench import LagProbe
    from tui_agent.ui.screens.history import HistoryScreen

    class Host(App[None]):
        pass

    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = HistoryScreen(store)
        await app.push_screen(screen)
        while screen.first_page_at is None:
            await asyncio.sleep(0.001)
        probe = LagProbe(asyncio.get_running_loop(), lags)
        for _ in range(steps):
            await pilot.press("down")
        await pilot.pause(0.3)
        probe.stop()
        assert screen.query_one(DataTable).row_count >= steps, "pages loaded on the way down"


def history(directory: Path, sessions: int, messages: int, repetitions: int) -> list[Figure]:
    store = SessionStore(directory / "bench-history.db")
    fill(store, sessions, messages)
    # One untimed open first: Textual loads and caches what every later screen reuses, as it has
    # long done by the time a user of the running app opens the browser.
    asyncio.run(_open_browser(store))
    pages = [asyncio.run(_open_browser(store)) * 1000 for _ in range(repetitions)]
    searches = []
    for query in (
        "lighthouse keeper",
        "dragon cook",
        "compaction permission",
        "parser refactor",
        "tower lamp",
    )[: max(repetitions, 3)]:
        started = time.perf_counter()
        hits = store.search(query, limit=50)
        searches.append((time.perf_counter() - started) * 1000)
        assert hits, f"no hits for {query!r}"
    lags: list[float] = []
    asyncio.run(_page_through(store, lags))
    store.close()
    lags_ms = [lag * 1000 for lag in lags]
    p, s = spread(pages), spread(searches)
    section = f"History ({sessions:,} sessions × {messages} messages)"
    return [
        Figure(
            section,
            "open the browser (first page shown)",
            p.median,
            "ms",
            "≤ 200 ms",
            p.describe("ms"),
        ),
        Figure(section, "full-text search", s.median, "ms", "≤ 100 ms", s.describe("ms")),
        Figure(
            section,
            "paging: event-loop lag p95",
            percentile(lags_ms, 95),
            "ms",
            "≤ 10 ms",
            f"{len(lags_ms)} probes while the cursor went down 400 rows; max"
            f" {max(lags_ms, default=0.0):.1f} ms",
        ),
    ]
