"""Keep Python's cyclic garbage collector from pausing the app while a reply streams.

A full collection walks every tracked object, and a transcript holds ~4,000 per exchange: with 40
exchanges one took 150–300 ms here, and when it struck mid-reply it froze the screen and took CPU
from generation. So at idle moments the survivors are frozen (moved out of the collector's
sight), and the collections that happen during the next reply only walk what was made since.
Frozen objects that die later are not collected until the next full settle: that happens when
widgets are removed in bulk (a new or resumed session), when the model has loaded (start-up made
most of the process's objects) and every FULL_EVERY replies.
"""

from __future__ import annotations

import gc

FULL_EVERY = 20


class GarbageSettler:
    def __init__(self) -> None:
        self.replies_since_full = 0

    def after_reply(self) -> None:
        """Cheap unless a full settle is due: collect the young generations, freeze the rest."""
        self.replies_since_full += 1
        if self.replies_since_full >= FULL_EVERY:
            self.fully()
            return
        gc.collect(1)
        gc.freeze()

    def fully(self) -> None:
        """Unfreeze and collect everything (what died since the last full settle goes), then
        freeze the survivors."""
        self.replies_since_full = 0
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    @staticmethod
    def release() -> None:
        """Give the frozen objects back to the collector (the app is closing)."""
        gc.unfreeze()
