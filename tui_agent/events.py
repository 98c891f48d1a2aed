"""Typed events: the one contract between the core and any front end.

The core (model resolution, the engine, the agent loop) reports everything through these
immutable records; the TUI, headless mode and the tests consume the same stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DownloadProgress:
    """Bytes of a model file fetched so far; total is None when the server did not say."""

    filename: str
    downloaded: int
    total: int | None
    bytes_per_sec: float

    @property
    def fraction(self) -> float | None:
        return self.downloaded / self.total if self.total else None


@dataclass(frozen=True)
class ModelLoadProgress:
    """Loading the model into memory: fraction runs from 0.0 to 1.0."""

    model: str
    fraction: float


@dataclass(frozen=True)
class ModelLoaded:
    model: str
    path: str
    seconds: float
    n_ctx: int
    chat_template: str


Event = DownloadProgress | ModelLoadProgress | ModelLoaded
EventSink = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The sink for callers that do not care about progress."""
