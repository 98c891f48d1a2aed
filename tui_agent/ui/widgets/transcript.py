"""The scrolling transcript and the widgets in it: messages, tool panels, notices."""

from __future__ import annotations

import json
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets._markdown import MarkdownStream

# Old widgets beyond this are removed from the screen (the history keeps them).
MAX_WIDGETS = 300
COLLAPSE_AFTER_LINES = 12
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def clock() -> float:
    """Seconds for elapsed times (snapshot tests replace it with a fixed clock)."""
    return time.monotonic()


class UserMessage(Static):
    DEFAULT_CLASSES = "message user"

    def __init__(self, text: str) -> None:
        super().__init__(Text(text), markup=False)
        self.border_title = "you"


class AssistantMessage(Vertical):
    """A reply; streams through a MarkdownStream while the model writes it."""

    DEFAULT_CLASSES = "message assistant"

    def __init__(self, text: str = "", interrupted: bool = False) -> None:
        super().__init__()
        self.markdown = Markdown(text)
        self._stream: MarkdownStream | None = None
        self.text = text
        self.border_title = "assistant"
        if interrupted:
            self.mark_interrupted()

    def compose(self) -> ComposeResult:
        yield self.markdown

    async def append(self, text: str) -> None:
        if self._stream is None:
            self._stream = Markdown.get_stream(self.markdown)
        self.text += text
        await self._stream.write(text)

    async def finish(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    def mark_interrupted(self) -> None:
        self.add_class("interrupted")
        self.border_subtitle = "interrupted"


class ToolPanel(Vertical):
    """A tool call: name, arguments, spinner and elapsed time; then its result."""

    DEFAULT_CLASSES = "tool-panel running"

    def __init__(
        self,
        call_id: str,
        name: str,
        arguments: dict[str, object],
        restored: tuple[bool, str, bool] | None = None,
    ) -> None:
        """``restored`` (success, output, denied) shows a finished call from the history."""
        super().__init__()
        self.restored = restored
        self.call_id = call_id
        self.tool_name = name
        self.arguments = arguments
        self.started = clock()
        self.finished_after: float | None = None
        self.status = "running"
        self.header = Static(self._header_text(), classes="tool-header")
        self.body = Vertical(classes="tool-body")

    def compose(self) -> ComposeResult:
        yield self.header
        yield Static(Text(_pretty_arguments(self.arguments)), classes="tool-arguments")
        yield self.body

    def on_mount(self) -> None:
        if self.restored is not None:
            self.set_result(*self.restored)
            return
        self._timer = self.set_interval(0.1, self._tick)

    def _tick(self) -> None:
        self.header.update(self._header_text())

    def _header_text(self) -> Text:
        elapsed = self.finished_after if self.finished_after is not None else clock() - self.started
        icon = {
            "running": _SPINNER[int(elapsed * 10) % len(_SPINNER)],
            "ok": "✓",
            "failed": "✗",
            "denied": "⊘",
            "waiting": "?",
        }[self.status]
        label = {
            "running": "running",
            "ok": "done",
            "failed": "failed",
            "denied": "denied",
            "waiting": "waiting for your answer",
        }[self.status]
        timing = "" if self.restored is not None else f" · {elapsed:.1f} s"
        return Text.assemble((f"{icon} {self.tool_name}", "bold"), f" · {label}{timing}")

    def waiting(self) -> None:
        self.status = "waiting"
        self._tick()

    def resume_running(self) -> None:
        self.status = "running"

    def set_result(self, success: bool, output: str, denied: bool = False) -> None:
        self.finished_after = clock() - self.started
        self.status = "denied" if denied else "ok" if success else "failed"
        self.remove_class("running")
        self.add_class(self.status)
        if hasattr(self, "_timer"):
            self._timer.stop()
        self._tick()
        lines = output.splitlines() or [""]
        content = Static(Text(output), classes="tool-output")
        if denied:
            self.body.mount(Static(Text(output), classes="tool-output denied"))
        elif len(lines) > COLLAPSE_AFTER_LINES:
            title = f"output: {len(lines)} lines (click or press Enter to expand)"
            self.body.mount(Collapsible(content, title=title, collapsed=True))
        else:
            self.body.mount(content)


class CompactionNotice(Vertical):
    DEFAULT_CLASSES = "notice compaction"

    def __init__(
        self,
        before: int,
        after: int,
        prompt_tokens: int,
        context_size: int,
        summary: str,
        manual: bool = False,
    ) -> None:
        super().__init__()
        how = "compacted on request" if manual else "Context compacted"
        self.headline = (
            f"{how}: {before} → {after} messages ({prompt_tokens:,} of {context_size:,} tokens)"
        )
        self.summary = summary

    def compose(self) -> ComposeResult:
        yield Static(Text(self.headline), classes="notice-headline")
        yield Collapsible(Static(Text(self.summary)), title="summary", collapsed=True)


class NoticeLine(Static):
    DEFAULT_CLASSES = "notice"

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(Text(text), markup=False)
        self.add_class(kind)


class Transcript(VerticalScroll):
    """Follows the newest text only while the user is at the bottom (Textual's anchor)."""

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, widget: Widget) -> None:
        await self.mount(widget)
        excess = len(self.children) - MAX_WIDGETS
        if excess > 0:
            await self.remove_children(list(self.children)[:excess])

    def tool_panel(self, call_id: str) -> ToolPanel | None:
        for panel in reversed(list(self.query(ToolPanel))):
            if panel.call_id == call_id:
                return panel
        return None


def _pretty_arguments(arguments: dict[str, object]) -> str:
    if not arguments:
        return "(no arguments)"
    return json.dumps(arguments, indent=2, ensure_ascii=False)
