"""Processes that open one new history database at the same moment (real processes, a real
SQLite file): each waits for a shared start time, then opens it as `llamachat history` does."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time
from pathlib import Path
start = float(sys.argv[2])
while time.time() < start:
    pass
from tui_agent.store.sessions import SessionStore
SessionStore(Path(sys.argv[1])).close()
"""


def test_processes_that_create_the_database_at_once_all_succeed(tmp_path: Path) -> None:
    failures = []
    for round_ in range(6):
        db = tmp_path / f"h{round_}.db"
        start = time.time() + 1.5  # after every child has started and imported
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(db), str(start)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for child in children:
            _, err = child.communicate(timeout=120)
            if child.returncode != 0:
                failures.append(err.strip().splitlines()[-1])
    assert failures == []
