"""Text from the model, tools, files and the history, made safe to draw.

Textual writes the characters of a widget's text to the terminal as they are, and only drops a
few (BEL, BS, VT, FF, CR). An ESC in a reply or in a file a tool read would start an escape
sequence: it could retitle the terminal, move the cursor over the screen or, where the terminal
allows OSC 52, write the user's clipboard. Control characters are shown instead, as the symbols
Unicode has for them (␛ for ESC).
"""

from __future__ import annotations

from dataclasses import fields, replace

from tui_agent.events import Event

_SHOWN: dict[int, int] = {code: 0x2400 + code for code in range(0x20) if chr(code) not in "\t\n\r"}
_SHOWN[0x7F] = 0x2421  # ␡
# C1 controls: some terminals read U+009B as CSI, the start of an escape sequence.
_SHOWN.update({code: 0xFFFD for code in range(0x80, 0xA0)})


def printable(text: str) -> str:
    """``text`` with terminal control characters replaced by visible symbols (tab, newline and
    carriage return kept)."""
    return text.translate(_SHOWN)


def printable_event(event: Event) -> Event:
    """The event with every text field made printable (arguments are shown as JSON, which
    escapes control characters itself)."""
    changes = {
        f.name: printable(value)
        for f in fields(event)
        if f.init and isinstance(value := getattr(event, f.name), str)
    }
    return replace(event, **changes) if changes else event  # type: ignore[arg-type]
