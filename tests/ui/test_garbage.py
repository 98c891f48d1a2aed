"""The garbage settler: frozen survivors, collected again by a full settle, released on exit."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tui_agent.ui import garbage
from tui_agent.ui.garbage import GarbageSettler


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector can free it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_survivors_are_frozen_and_a_full_settle_collects_what_died_since() -> None:
    settler = GarbageSettler()
    node = Node()
    alive = weakref.ref(node)
    settler.after_reply()
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()
    assert alive() is not None, "a frozen cycle is out of the collector's sight"
    settler.fully()
    assert alive() is None and settler.replies_since_full == 0


def test_every_few_replies_the_settle_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garbage, "FULL_EVERY", 3)
    settler = GarbageSettler()
    node = Node()
    alive = weakref.ref(node)
    settler.after_reply()
    del node
    settler.after_reply()
    assert alive() is not None and settler.replies_since_full == 2
    settler.after_reply()  # the third: full
    assert alive() is None and settler.replies_since_full == 0


def test_release_gives_everything_back() -> None:
    GarbageSettler().after_reply()
    GarbageSettler.release()
    assert gc.get_freeze_count() == 0
