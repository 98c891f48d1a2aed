"""Typed events: the one contract between the core and any front end.

The core (model resolution, the engine, the agent loop) reports everything through these
immutable records; the TUI, headless mode and the tests consume the same stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tui_agent.errors import ErrorKind, LlamachatError


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


@dataclass(frozen=True)
class IterationStart:
    """One model call of the agent loop begins (max_iterations 0 means unlimited)."""

    iteration: int
    max_iterations: int


@dataclass(frozen=True)
class TextDelta:
    """Reply text as it streams. Tool-call markup is never sent as text."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """The model's reasoning (``<think>`` … ``</think>``) as it streams, apart from the reply."""

    text: str


@dataclass(frozen=True)
class ToolStart:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class PermissionRequest:
    """A dangerous tool call waits for the user; answer with the worker's reply_permission."""

    request_id: str
    call_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str
    rule: str
    diff: str = ""
    # For run_shell: each simple command found and how the rules took it, and what always asks.
    checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class PermissionDecision:
    """The user's answer to a PermissionRequest (the front end sends it back to the worker)."""

    allowed: bool
    scope: str  # once | session | always | rule | headless
    reason: str = ""


@dataclass(frozen=True)
class PermissionResult:
    """How a tool call was decided; scope is once | session | always | rule | headless."""

    call_id: str
    tool: str
    allowed: bool
    scope: str
    reason: str = ""


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    success: bool
    output: str
    denied: bool = False


@dataclass(frozen=True)
class ContextCompacted:
    messages_before: int
    messages_after: int
    prompt_tokens: int
    context_size: int
    summary: str
    manual: bool = False


@dataclass(frozen=True)
class TurnStatistics:
    """The trace of one model call: what was reused from the KV cache, how fast it streamed."""

    iteration: int
    prompt_tokens: int
    cached_tokens: int
    generated_tokens: int
    time_to_first_token: float
    tokens_per_second: float
    seconds: float
    # Of the cached tokens, those a saved state put back (going back to a session), and how long.
    restored_tokens: int = 0
    restore_seconds: float = 0.0
    # Cores other programs kept busy at the most meanwhile (fewer threads were used for it).
    busy_cores: float = 0.0
    # Tokens guessed from the context (prompt-lookup drafting), and those the model took.
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    # Why generation stopped: stop (the model ended), length (the token limit), cancelled.
    finish_reason: str = ""

    @property
    def evaluated_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens


CompletionReason = Literal[
    "done", "max_iterations", "length", "cancelled", "repeated_tool_call", "error"
]


@dataclass(frozen=True)
class Completed:
    """The prompt is finished.

    done: the model answered; max_iterations: the loop hit its limit; length: the reply was cut
    at max_tokens_per_completion (or the end of the context); cancelled: the user stopped it; repeated_tool_call: the model kept repeating one call; error: see the Error event before.
    """

    reason: CompletionReason
    text: str = ""


@dataclass(frozen=True)
class Error:
    message: str
    hint: str = ""
    # What failed (see errors.ErrorKind): front ends add their own next step and exit status.
    kind: ErrorKind = "general"

    @classmethod
    def of(cls, exc: LlamachatError) -> Error:
        return cls(exc.message, exc.hint, exc.kind)


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not an error (e.g. a tool server restarted)."""

    message: str


@dataclass(frozen=True)
class SessionChanged:
    """The worker now runs this conversation (a new one, or one resumed from history)."""

    conversation_id: str
    resumed: bool
    context_tokens: int = 0  # a resumed conversation's prompt, in tokens (0 for a new one)


Event = (
    DownloadProgress
    | ModelLoadProgress
    | ModelLoaded
    | IterationStart
    | TextDelta
    | ReasoningDelta
    | ToolStart
    | PermissionRequest
    | PermissionResult
    | ToolResult
    | ContextCompacted
    | TurnStatistics
    | Completed
    | Error
    | Notice
    | SessionChanged
)
EventSink = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The sink for callers that do not care about progress."""


def event_to_dict(event: Event) -> dict[str, Any]:
    """An event as JSON-ready data with a snake_case "type" (stream-json output, exports)."""
    name = type(event).__name__
    kind = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return {"type": kind, **dataclasses.asdict(event)}
