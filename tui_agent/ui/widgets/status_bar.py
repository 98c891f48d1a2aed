"""The status line: state, model, context use, speed, memory."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from tui_agent.session import current_rss, format_bytes

# Other programs' use of the cores from which the status line says the CPU is busy.
BUSY_CORES = 0.5


@dataclass
class StatusInfo:
    state: str = "starting"
    model: str = ""
    context_used: int = 0
    context_size: int = 0
    tokens_per_second: float = 0.0
    time_to_first_token: float = 0.0
    progress: float | None = None
    # When the current progress began (monotonic): a load reads the model's header and
    # vocabulary before its first figure, seconds at 0% that must not look stuck.
    progress_since: float | None = None
    saving: bool = True  # False: this chat is not saved to the history
    remote: bool = False  # the model runs on a server, not in this process
    busy_cores: float = 0.0  # cores other programs kept busy during the last reply


class StatusBar(Static):
    def __init__(self) -> None:
        super().__init__("", id="status-bar")
        self.info = StatusInfo()
        self._shown = Text()

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh_status)  # RSS changes without events
        self.refresh_status()

    def set(self, **changes: object) -> None:
        if "progress" in changes:
            started = changes["progress"] is not None and self.info.progress is None
            if changes["progress"] is None:
                self.info.progress_since = None
            elif started or changes.get("state", self.info.state) != self.info.state:
                self.info.progress_since = time.monotonic()
        for key, value in changes.items():
            setattr(self.info, key, value)
        self.refresh_status()

    def refresh_status(self) -> None:
        text = self.render_text()
        if text == self._shown:
            return  # the once-a-second tick mostly finds nothing new: no repaint
        self._shown = text
        # One line high whatever it says: a repaint, not a layout pass over the whole screen.
        self.update(text, layout=False)

    def render_text(self) -> Text:
        info = self.info
        state = info.state if info.progress is None else f"{info.state} {info.progress:.0%}"
        if info.progress is not None and info.progress_since is not None:
            state += f" · {time.monotonic() - info.progress_since:.0f} s"
        if info.state == "downloading":
            state += " (Esc stops)"
        style = {
            "ready": "bold green",
            "generating": "bold yellow",
            "waiting for permission": "bold magenta",
            "model failed": "bold red",
        }.get(info.state, "bold cyan")
        head: list[str | tuple[str, str]] = [(f"● {state}", style)]
        if not info.saving:
            head += ["  │  ", ("not saved", "bold red")]
        parts: list[str | tuple[str, str]] = []
        if info.context_size:
            filled = round(10 * min(info.context_used / info.context_size, 1.0))
            parts += [
                "  │  ctx ",
                ("▰" * filled + "▱" * (10 - filled), "cyan"),
                f" {info.context_used:,}/{info.context_size:,}",
            ]
        if info.tokens_per_second:
            parts += [
                f"  │  {info.tokens_per_second:.0f} tok/s · first token {info.time_to_first_token:.2f} s"
            ]
            if info.busy_cores >= BUSY_CORES:  # why it is slower than usual
                parts += [(f" · CPU busy: {info.busy_cores:.1f} cores used elsewhere", "yellow")]
        parts += [f"  │  RSS {format_bytes(current_rss())}"]
        if not info.model:
            return Text.assemble(*head, *parts)
        remote: list[str | tuple[str, str]] = [" ", ("remote", "cyan")] if info.remote else []
        # The model's name gets the room the rest leaves (at least _MIN_NAME cells).
        rest = Text.assemble(*head, "  │  ", *remote, *parts).cell_len
        width = self.content_size.width
        room = max(_MIN_NAME, width - rest - 1) if width else _MIN_NAME
        return Text.assemble(*head, "  │  ", (shortened(info.model, room), "bold"), *remote, *parts)

    def on_resize(self) -> None:
        self.refresh_status()


_MIN_NAME = 24


def shortened(name: str, room: int) -> str:
    """The name in ``room`` cells, its middle cut: both ends say most (a file's quantization);
    a server's " @ host:port" is kept whole while the model's part can keep a few letters."""
    if len(name) <= room:
        return name
    model, at, host = name.rpartition(" @ ")
    if at and room - len(at + host) >= 8:
        return shortened(model, room - len(at + host)) + at + host
    head = (room - 1) // 2
    return name[:head] + "…" + name[len(name) - (room - 1 - head) :]
