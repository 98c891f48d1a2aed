"""Model states on disk: what is written is read back, what does not check out is removed (and
never given to llama.cpp), the budget evicts the least recently used, a full disk is said once."""

from __future__ import annotations

import ctypes
import json
import os
import struct
import time
from pathlib import Path

import pytest

from tui_agent.engine import state_files
from tui_agent.engine.state_files import (
    MAGIC,
    StateShelf,
    read_state,
    remove_states,
)
from tui_agent.engine.state_files import (
    state_files as listed,
)

IDENTITY = {"model": "/models/a.gguf", "model_bytes": 1, "n_ctx": 4096}


def blob(size: int, fill: int = 7) -> ctypes.Array[ctypes.c_uint8]:
    return (ctypes.c_uint8 * size)(*([fill] * size))


def save(
    shelf: StateShelf, tokens: range | tuple[int, ...], size: int = 1000, session: str = "s"
) -> None:
    shelf.save_later(tuple(tokens), blob(size), size, session)
    shelf.flush()


def shelf(
    tmp_path: Path, budget: int = 10**9, identity: dict[str, object] = IDENTITY
) -> StateShelf:
    return StateShelf(dict(identity), budget, root=tmp_path / "states")


def only_file(s: StateShelf) -> Path:
    (path,) = s.directory.glob("*.state")
    return path


def test_a_saved_state_reads_back_exactly(tmp_path: Path) -> None:
    s = shelf(tmp_path)
    save(s, range(100), 5000, session="abc")
    (entry,) = s.entries()
    assert entry.tokens == tuple(range(100)) and entry.session == "abc"
    data, size = s.read(entry) or (None, 0)
    assert size == 5000 and bytes(data) == bytes(blob(5000))
    assert not list(s.directory.glob("*.tmp")), "no temporary file is left"


def test_a_longer_state_of_the_same_start_replaces_the_shorter(tmp_path: Path) -> None:
    s = shelf(tmp_path)
    save(s, range(100))
    save(s, range(300))
    save(s, [*range(50), 999, 998])  # shares only a start: both are kept
    assert sorted(len(e.tokens) for e in s.entries()) == [52, 300]


@pytest.mark.parametrize(
    "damage",
    ["flip a state byte", "cut short", "newer format", "not a state", "empty", "bad header"],
)
def test_a_damaged_file_is_removed_and_never_read(tmp_path: Path, damage: str) -> None:
    s = shelf(tmp_path)
    save(s, range(100), 4000)
    path = only_file(s)
    raw = bytearray(path.read_bytes())
    if damage == "flip a state byte":
        raw[-10] ^= 0xFF
    elif damage == "cut short":
        raw = raw[:-100]
    elif damage == "newer format":
        raw[len(MAGIC) : len(MAGIC) + 4] = struct.pack("<I", state_files.FORMAT + 1)
    elif damage == "not a state":
        raw = bytearray(b"GGUF" + bytes(5000))
    elif damage == "empty":
        raw = bytearray()
    else:
        raw[len(MAGIC) + 8 : len(MAGIC) + 12] = b"{{{{"
    path.write_bytes(bytes(raw))
    fresh = shelf(tmp_path)  # another process: it lists the directory anew
    found = fresh.entries()
    if found:  # only a flipped state byte passes the header: the checksum catches it on reading
        assert damage == "flip a state byte"
        assert fresh.read(found[0]) is None
    assert not path.exists(), "the bad file is removed"
    assert fresh.entries() == []


def test_a_file_of_another_model_or_context_is_refused(tmp_path: Path) -> None:
    theirs = shelf(tmp_path, identity={**IDENTITY, "n_ctx": 2048})
    save(theirs, range(100))
    ours = shelf(tmp_path)
    assert ours.directory != theirs.directory and ours.entries() == []
    # Even moved into our directory, its header says whose it is.
    ours.directory.mkdir(parents=True)
    moved = ours.directory / only_file(theirs).name
    only_file(theirs).rename(moved)
    assert ours.entries() == [] and not moved.exists()


def test_the_budget_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    probe = shelf(tmp_path / "probe")
    save(probe, range(100), 1000)
    # Room for three files (their headers differ by a few bytes: the time saved), not four.
    budget = 3 * only_file(probe).stat().st_size + 64
    s = shelf(tmp_path, budget=budget)
    for first in (1000, 2000, 3000):
        save(s, range(first, first + 100), 1000)
        time.sleep(0.02)  # distinct modification times
    oldest = min(s.entries(), key=lambda e: e.tokens[0])
    assert s.read(oldest) is not None  # used now: no longer the oldest
    time.sleep(0.02)
    save(s, range(4000, 4100), 1000)
    assert sorted(e.tokens[0] for e in s.entries()) == [1000, 3000, 4000]
    total = sum(p.stat().st_size for p in s.directory.glob("*.state"))
    assert total <= budget


def test_a_full_disk_is_said_once_and_leaves_nothing_behind(tmp_path: Path) -> None:
    s = shelf(tmp_path)
    # The kernel's own "no space left on device", from a real write.
    s.open_temp = lambda path: open("/dev/full", "wb")  # noqa: SIM115
    save(s, range(100))
    save(s, range(200, 300))
    notices = s.take_notices()
    assert len(notices) == 1 and "disk is full" in notices[0]
    assert s.take_notices() == [] and s.entries() == []
    assert not [p for p in (tmp_path / "states").rglob("*") if p.is_file()]


def test_temporary_files_of_a_killed_process_are_cleaned_up(tmp_path: Path) -> None:
    s = shelf(tmp_path)
    s.directory.mkdir(parents=True)
    stale = s.directory / "x.state.123.456.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = s.directory / "y.state.123.789.tmp"  # maybe being written right now: kept
    fresh.write_bytes(b"half")
    save(s, range(100))
    assert not stale.exists() and fresh.exists()


def test_removing_a_sessions_states_keeps_the_others(tmp_path: Path) -> None:
    root = tmp_path / "states"
    s = shelf(tmp_path)
    save(s, range(100), session="keep")
    save(s, range(500, 600), session="drop")
    assert remove_states({"drop"}, root)[0] == 1
    assert [e.session for e in listed(root)] == ["keep"]
    assert remove_states(None, root)[0] == 1 and not list(root.iterdir())


def test_the_header_is_plain_json_with_the_identity(tmp_path: Path) -> None:
    s = shelf(tmp_path)
    save(s, range(100), 64)
    raw = only_file(s).read_bytes()
    length = struct.unpack("<I", raw[len(MAGIC) + 4 : len(MAGIC) + 8])[0]
    header = json.loads(raw[len(MAGIC) + 8 : len(MAGIC) + 8 + length])
    assert header["identity"] == IDENTITY and header["tokens"] == 100
    assert read_state(s.entries()[0])[1] == 64
