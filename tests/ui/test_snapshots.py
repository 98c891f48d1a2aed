"""Snapshots of the main states (pytest-textual-snapshot); update with --snapshot-update."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ui.harness import SIZE
from tests.ui.scenarios import SCENARIOS


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_snapshot(name: str, snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("tui_agent.ui.widgets.transcript.clock", lambda: 0.0)
    monkeypatch.setattr("tui_agent.ui.widgets.status_bar.current_rss", lambda: 301 * 1024 * 1024)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    app, run_before = SCENARIOS[name](tmp_path)
    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)
