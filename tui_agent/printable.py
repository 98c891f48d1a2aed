"""Text from the model, tools, files and the history, made safe to draw.

Textual writes the characters of a widget's text to the terminal as they are, and only drops a
few (BEL, BS, VT, FF, CR). An ESC in a reply or in a file a tool read would start an escape
sequence: it could retitle the terminal, move the cursor over the screen or, where the terminal
allows OSC 52, write the user's clipboard. Control characters are shown instead, as the symbols
Unicode has for them (␛ for ESC).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import Any, TextIO

from tui_agent.events import Event

_SHOWN: dict[int, int] = {code: 0x2400 + code for code in range(0x20) if chr(code) not in "\t\n\r"}
_SHOWN[0x7F] = 0x2421  # ␡
# C1 controls: some terminals read U+009B as CSI, the start of an escape sequence.
_SHOWN.update({code: 0xFFFD for code in range(0x80, 0xA0)})


def printable(text: str) -> str:
    """``text`` with terminal control characters replaced by visible symbols (tab, newline and
    carriage return kept)."""
    return text.translate(_SHOWN)


def printable_value(value: Any) -> Any:
    """``value`` with every string in it made printable, through dicts and lists (a tool call's
    arguments are shown as JSON with ensure_ascii off, which escapes C0 controls but not DEL or
    C1)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {key: printable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(printable_value(item) for item in value)
    return value


def printable_event(event: Event) -> Event:
    """The event with its text made printable; the same object when it had nothing to replace
    (the usual case, and this runs for every streamed token)."""
    changes = {
        f.name: shown
        for f in fields(event)
        if f.init and (shown := printable_value(value := getattr(event, f.name))) != value
    }
    return replace(event, **changes) if changes else event


class TerminalText(io.TextIOBase):
    """A terminal's stream that writes control characters as visible symbols: what the CLI
    prints (a session's text, a file a tool read) cannot retitle the terminal or move its cursor.
    Piped or redirected output is left exactly as it is."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


@contextlib.contextmanager
def terminal_safe_output() -> Iterator[None]:
    """Within it, stdout and stderr show control characters as symbols where they are terminals."""
    saved = sys.stdout, sys.stderr
    if sys.stdout.isatty():
        sys.stdout = TerminalText(sys.stdout)
    if sys.stderr.isatty():
        sys.stderr = TerminalText(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
