"""Errors a user can act on.

Every failure that reaches the user is a ``LlamachatError``: one line that says what is wrong,
plus a hint that says how to fix it. The CLI prints both and exits non-zero; the UI shows them as
notifications. Anything else is a bug and keeps its traceback (shown with ``--debug``).
"""

from __future__ import annotations

from typing import Literal

# What kind of failure an error is, so every front end can say what to do in its own terms
# (the chat names a command, headless a flag) and headless can pick its exit status.
ErrorKind = Literal[
    "config",  # the config file, an argument, the prompt
    "model_not_found",
    "model_load",
    "memory",  # not enough memory for the model and its context
    "context",  # the conversation no longer fits the context
    "history",  # the session database
    "tool",
    "remote",  # a model served over the network
    "general",  # any other failure the user can act on
    "internal",  # a bug
]


class LlamachatError(Exception):
    """A failure with a message for the user and a hint on how to fix it."""

    exit_code = 1
    kind: ErrorKind = "general"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(LlamachatError):
    """The config file is unreadable, malformed or holds a bad value."""

    exit_code = 2
    kind: ErrorKind = "config"


class HistoryUnavailableError(LlamachatError):
    """The history database cannot be created or opened (an unwritable folder, a bad path)."""

    kind: ErrorKind = "history"


class ModelError(LlamachatError):
    """A model cannot be found, read or loaded."""

    exit_code = 3
    kind: ErrorKind = "model_load"


class ModelNotFoundError(ModelError):
    """The model file, preset, repo or repo file does not exist."""

    kind: ErrorKind = "model_not_found"


class NotAGGUFError(ModelError):
    """The file exists but is not a GGUF file (wrong magic bytes)."""


class CorruptModelError(ModelError):
    """The GGUF header is truncated or inconsistent."""


class NotEnoughMemoryError(ModelError):
    """The estimated memory for the model and its context exceeds what is available."""

    kind: ErrorKind = "memory"


class OfflineError(ModelError):
    """The model is not in the local cache and the network may not be used."""

    kind: ErrorKind = "model_not_found"


class LoadCancelled(ModelError):
    """The user stopped a model's download or load (Esc, a switch to another model, quitting).

    Raised by the event sink that receives the progress events, the one place every layer of a
    download or a load already reports to."""

    exit_code = 130


class UnsupportedModelError(ModelError):
    """llama.cpp cannot run this model (for example an unknown architecture)."""
