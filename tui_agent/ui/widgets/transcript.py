"""The scrolling transcript and the widgets in it: messages, tool panels, notices."""

from __future__ import annotations

import functools
import itertools
import json
import time
from dataclasses import dataclass
from typing import ClassVar

from markdown_it import MarkdownIt
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static

from tui_agent.printable import printable

# Old widgets beyond this are removed from the screen (the history keeps them).
MAX_WIDGETS = 300
COLLAPSE_AFTER_LINES = 12
DIM = Style(dim=True)
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def clock() -> float:
    """Seconds for elapsed times (snapshot tests replace it with a fixed clock)."""
    return time.monotonic()


class UserMessage(Static):
    DEFAULT_CLASSES = "message user"

    def __init__(self, text: str) -> None:
        # Typed, pasted or from the history: control characters shown, not sent to the terminal.
        super().__init__(Text(printable(text)), markup=False)
        self.border_title = "you"


class ReplyTail(Widget):
    """The end of a streaming reply that is not a complete Markdown block yet, as plain text.

    Why not stream every update into the Markdown widget: each Markdown update re-parses and
    re-mounts its last block and re-lays out the whole screen, several ms of main-thread work that
    on a 2-core machine comes straight out of generation. This widget reserves its height
    RESERVE_LINES first, then a third of the screen at a time, so most updates need no layout
    pass; and it draws line by line, re-wrapping only the lines that changed and repainting only
    the rows they are on. The text above stays put between steps, which is easier to read than a
    view that scrolls on every update.
    """

    DEFAULT_CSS = "ReplyTail { height: auto; }"
    RESERVE_LINES = 4
    RESERVE_SHARE = 3
    CURSOR = "▍"

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self._height = 0
        self._step = self.RESERVE_LINES
        self._outgrown_first = False
        self._width = 0
        self._rows: list[str] = []  # the wrapped text, cursor included, at self._width
        self._wrapped: dict[str, list[str]] = {}  # the last update's lines, wrapped

    def outgrows(self, text: str) -> bool:
        """Whether showing ``text`` needs more than the height reserved now (a layout pass).
        Not known before the tail's first layout, which is on its way then anyway."""
        return bool(self._width) and self._reserve(len(self._wrap(text))) > self._height

    def grow(self) -> None:
        """Reserve whole steps from now on, even once blocks handed over shrink the text: a
        shrink back to the first reserve and a regrowth would be two more layout passes."""
        self._outgrown_first = True

    def show(self, text: str) -> None:
        self.text = text
        if not self._width:
            self.refresh(layout=True)
            return
        rows = self._wrap(text)
        if self._reserve(len(rows)) != self._height:
            self._rows = rows
            self.refresh(layout=True)
            return
        changed = next(
            (y for y, (old, new) in enumerate(zip(self._rows, rows, strict=False)) if old != new),
            min(len(self._rows), len(rows)),
        )
        last = max(len(self._rows), len(rows))
        self._rows = rows
        if last > changed:
            self.refresh(Region(0, changed, self._width, last - changed))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._step = max(self.RESERVE_LINES, viewport.height // self.RESERVE_SHARE)
        if width != self._width:
            self._width, self._wrapped = width, {}
        self._rows = self._wrap(self.text)
        self._height = self._reserve(len(self._rows))
        return self._height

    def render_line(self, y: int) -> Strip:
        style = self.rich_style
        width = self.size.width
        if y >= len(self._rows):
            return Strip.blank(width, style)
        row = self._rows[y]
        if y == len(self._rows) - 1 and row.endswith(self.CURSOR):
            segments = [Segment(row[:-1], style), Segment(self.CURSOR, style + DIM)]
        else:
            segments = [Segment(row, style)]
        return Strip(segments).crop_extend(0, width, style)

    def _reserve(self, rows: int) -> int:
        # RESERVE_LINES first, so a short reply leaves little blank to close up when it ends.
        first, step = self.RESERVE_LINES, self._step
        if rows <= first and not self._outgrown_first:
            return first
        return (rows + step - 1) // step * step

    def _wrap(self, text: str) -> list[str]:
        """The rows ``text`` and the cursor take at the current width. Each line of the text is
        wrapped on its own, and lines unchanged since the last update are not wrapped again."""
        width = max(self._width, 1)
        wrapped: dict[str, list[str]] = {}
        rows: list[str] = []
        for line in (text + self.CURSOR).split("\n"):
            if (lines := self._wrapped.get(line)) is None:
                lines = [row.plain for row in Content(line).expand_tabs().wrap(width)] or [""]
            wrapped[line] = lines
            rows += lines
        self._wrapped = wrapped
        return rows


@functools.cache
def shared_parser() -> MarkdownIt:
    """One parser for every reply: Textual's Markdown builds a new one (and its link-finding
    regular expressions) on each update and append, ~1 ms each time."""
    return MarkdownIt("gfm-like")


def settled_length(text: str, start: int) -> int:
    """Where the complete Markdown blocks of ``text`` end, scanning from ``start`` (which must
    not be inside a code fence): after the last blank line or closing fence outside a fence.
    A line only counts once its newline has arrived."""
    settled = start
    fence = ""  # the fence character while inside a fenced code block
    position = start
    while (end := text.find("\n", position)) != -1:
        stripped = text[position:end].strip()
        position = end + 1
        if not fence:
            if stripped.startswith(("```", "~~~")):
                fence = stripped[0]
            elif not stripped:
                settled = position
        elif len(stripped) >= 3 and stripped == fence * len(stripped):
            fence = ""  # a closing fence: only fence characters, no info string
            settled = position
    return settled


class AssistantMessage(Vertical):
    """A reply. While the model writes it, complete blocks go to the Markdown widget and the
    unfinished rest is shown by a ReplyTail below it.

    Blocks are handed over when the tail outgrows its reserved height: that costs a layout pass
    of the screen anyway (~12 ms here, against ~2 ms for a repaint of the tail), so the hand-over
    shares it instead of adding one. A block that has waited COMMIT_SECONDS is handed over
    anyway, so a slow model's finished paragraphs do not stay raw Markdown for long. Hand-over
    and tail update happen in one batch: the moved text is never drawn twice or not at all.
    """

    DEFAULT_CLASSES = "message assistant"
    COMMIT_SECONDS = 2.0

    def __init__(
        self,
        text: str = "",
        interrupted: bool = False,
        streaming: bool = False,
        reasoning: str = "",
    ) -> None:
        """``streaming``: the reply is still being written and arrives through ``append``;
        ``reasoning``: what the model thought first, shown collapsed above the reply."""
        super().__init__()
        self.markdown = Markdown(text, parser_factory=shared_parser)
        self.text = text
        self.reasoning = reasoning
        self._thoughts = Static(Text(reasoning), classes="reasoning-text")
        self._thinking: Collapsible | None = None
        # Composed with the message, so the first words need no layout pass of their own.
        self._tail = ReplyTail() if streaming else None
        self._settled = len(text)
        self._block_waits_since: float | None = None  # when a complete block reached the tail
        self.border_title = "assistant"
        if interrupted:
            self.mark_interrupted()

    def compose(self) -> ComposeResult:
        if self.reasoning:
            yield self._reasoning_box()
        yield self.markdown
        if self._tail is not None:
            yield self._tail

    def _reasoning_box(self) -> Collapsible:
        self._thinking = Collapsible(
            self._thoughts, title=self._reasoning_title(), collapsed=True, classes="reasoning"
        )
        return self._thinking

    def _reasoning_title(self) -> str:
        return f"reasoning ({len(self.reasoning.split()):,} words)"

    async def think(self, text: str) -> None:
        """More of the model's reasoning, as it streams (collapsed: the title counts words)."""
        self.reasoning += text
        if self._thinking is None:
            await self.mount(self._reasoning_box(), before=self.markdown)
            return
        self._thinking.title = self._reasoning_title()
        if not self._thinking.collapsed:
            self._thoughts.update(Text(self.reasoning))

    def on_collapsible_expanded(self) -> None:
        self._thoughts.update(Text(self.reasoning))

    async def append(self, text: str) -> None:
        if self._tail is None:
            raise RuntimeError("append() is for a streaming reply that has not finished")
        self.text += text
        await self._update_tail(self._tail)

    async def idle(self) -> None:
        """No new text this time (a slow model, or one reading a long prompt): hand over the
        blocks that have waited long enough."""
        if self._tail is not None and self._waited_enough():
            await self._update_tail(self._tail)

    async def _update_tail(self, tail: ReplyTail) -> None:
        settled = settled_length(self.text, self._settled)
        if settled > self._settled and self._block_waits_since is None:
            self._block_waits_since = clock()
        with self.app.batch_update():
            outgrown = tail.outgrows(self.text[self._settled :])
            if outgrown:
                tail.grow()
            if self._block_waits_since is not None and (outgrown or self._waited_enough()):
                await self._commit(settled)
            tail.show(self.text[self._settled :])

    def _waited_enough(self) -> bool:
        since = self._block_waits_since
        return since is not None and clock() - since >= self.COMMIT_SECONDS

    async def finish(self) -> None:
        if self._tail is None:
            return
        with self.app.batch_update():
            await self._commit(len(self.text))
            await self._tail.remove()
        self._tail = None

    async def _commit(self, end: int) -> None:
        if end > self._settled:
            await self.markdown.append(self.text[self._settled : end])
            self._settled = end
        self._block_waits_since = None

    @property
    def streaming(self) -> bool:
        """The reply is still being written."""
        return self._tail is not None

    @property
    def streaming_tail(self) -> str:
        """The text not yet handed to the Markdown widget ("" once the reply is finished)."""
        return self._tail.text if self._tail is not None else ""

    def mark_interrupted(self) -> None:
        self.add_class("interrupted")
        self.border_subtitle = "interrupted"

    def mark_cut(self) -> None:
        """The reply stopped at [agent] max_tokens_per_completion, not where the model ended it."""
        self.add_class("cut")
        self.border_subtitle = "cut at the token limit"


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
        # Time spent on the user's answer is not the tool's: shown apart.
        self.waited = 0.0
        self._waiting_since: float | None = None
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
        # The header is one line (the spinner ticks 10 times a second): repaint, no layout.
        self.header.update(self._header_text(), layout=False)

    def _header_text(self) -> Text:
        total = self.finished_after if self.finished_after is not None else clock() - self.started
        waiting = clock() - self._waiting_since if self._waiting_since is not None else 0.0
        elapsed = max(total - self.waited - waiting, 0.0)
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
        if self.restored is not None:
            timing = ""
        elif self.status == "waiting":
            timing = f" · {waiting:.1f} s"
        else:
            waited = self.waited + waiting
            timing = f" · {elapsed:.1f} s" + (f" · waited for you {waited:.1f} s" if waited else "")
        return Text.assemble((f"{icon} {self.tool_name}", "bold"), f" · {label}{timing}")

    def waiting(self) -> None:
        self.status = "waiting"
        self._waiting_since = clock()
        self._tick()

    def _stop_waiting(self) -> None:
        if self._waiting_since is not None:
            self.waited += clock() - self._waiting_since
            self._waiting_since = None

    def resume_running(self) -> None:
        self._stop_waiting()
        self.status = "running"

    def set_result(self, success: bool, output: str, denied: bool = False) -> None:
        self._stop_waiting()
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


class Welcome(Static):
    """What an empty chat says: what it is and where to start."""

    DEFAULT_CLASSES = "notice welcome"

    def __init__(self, text: str) -> None:
        super().__init__(Text(text), markup=False)


class EarlierEntries(Static, can_focus=True):
    """The top line of a long transcript: how many older entries are hidden, and how to show them."""

    BINDINGS: ClassVar = [Binding("enter", "show", "show earlier")]

    def action_show(self) -> None:
        transcript = self.parent
        if isinstance(transcript, Transcript):
            transcript.show_earlier()

    def on_click(self) -> None:
        self.action_show()


class FoldedEntries(Widget):
    """Stands in for entries scrolled well above the view: one blank widget as tall as they are
    (their collapsed margins included), so the scrollbar and the scroll position stay true."""

    DEFAULT_CSS = "FoldedEntries { height: 0; }"

    def render_line(self, y: int) -> Strip:
        return Strip.blank(self.size.width, self.rich_style)


@dataclass(frozen=True)
class _Fold:
    """An entry folded away, with its height and vertical margins when it was folded."""

    entry: Widget
    height: int
    margin_top: int
    margin_bottom: int


class Transcript(VerticalScroll):
    """Follows the newest text only while the user is at the bottom (Textual's anchor).

    Every layout pass (a streamed reply needs one every third of a screen) walks every displayed
    widget, and a finished reply is ~20 of them (Markdown makes one per block and three per list
    item). Two things keep that walk short in a long session:
    - only the newest SHOWN_ENTRIES entries are displayed; older ones stay mounted but hidden
      until asked for; beyond MAX_WIDGETS they are removed from the screen (the history keeps
      them);
    - when a prompt is sent, the entries above the view are folded into one FoldedEntries of
      their height, and unfolded as the user scrolls up to within half a screen of them (or when
      the width changes, which changes their height).
    """

    SHOWN_ENTRIES = 20

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._folds: list[_Fold] = []
        self._folded_at_width = 0
        self._spacer = FoldedEntries()  # kept: watch_scroll_y reads it on every scroll

    def compose(self) -> ComposeResult:
        yield EarlierEntries(id="earlier-entries")
        yield self._spacer

    def on_mount(self) -> None:
        self.earlier.display = False
        self._spacer.display = False
        self.anchor()

    @property
    def earlier(self) -> EarlierEntries:
        return self.query_one(EarlierEntries)

    @property
    def entries(self) -> list[Widget]:
        return [
            child
            for child in self.children
            if not isinstance(child, EarlierEntries | Welcome | FoldedEntries)
        ]

    @property
    def folded(self) -> list[Widget]:
        """The entries folded away above the view, oldest first."""
        return [fold.entry for fold in self._folds]

    async def welcome(self, text: str) -> None:
        """A line for an empty transcript; the first entry takes its place."""
        if not self.entries and not self.query_children(Welcome):
            await self.mount(Welcome(text))

    async def add(self, *widgets: Widget) -> None:
        """Add entries; a new prompt also hides entries beyond the window (the user is at the
        bottom then, so nothing they are reading disappears)."""
        await self.query_children(Welcome).remove()
        await self.mount(*widgets)
        await self._prune()
        if any(isinstance(widget, UserMessage) for widget in widgets):
            self._window()

    async def clear(self) -> None:
        self.unfold()
        await self.remove_children([*self.entries, *self.query_children(Welcome)])
        self._show_count()

    def show_earlier(self) -> None:
        self.unfold()
        hidden = [entry for entry in self.entries if not entry.display]
        for entry in hidden[-self.SHOWN_ENTRIES :]:
            entry.display = True
        self._show_count()

    def _window(self) -> None:
        entries = self.entries
        for entry in entries[: -self.SHOWN_ENTRIES]:
            entry.display = False
        window = set(entries[-self.SHOWN_ENTRIES :])
        self._folds = [fold for fold in self._folds if fold.entry in window]
        self._fold()
        self._show_count()

    def _fold(self) -> None:
        """Fold the oldest displayed entries that lie wholly above a view at the bottom (where
        the prompt just sent puts it), by their heights in the last layout."""
        shown = [entry for entry in self.entries if entry.display]
        reach = self.scrollable_content_region.height
        below = 0
        oldest_kept = len(shown)
        while oldest_kept > 0 and below < reach:
            oldest_kept -= 1
            entry = shown[oldest_kept]
            below += entry.outer_size.height + entry.styles.margin.top + entry.styles.margin.bottom
        for entry in shown[:oldest_kept]:
            if not _settled(entry):
                break
            margin = entry.styles.margin
            self._folds.append(_Fold(entry, entry.outer_size.height, margin.top, margin.bottom))
            entry.display = False
        self._place_spacer()

    def _place_spacer(self) -> None:
        spacer = self._spacer
        if not self._folds:
            spacer.display = False
            return
        # What Textual's vertical layout gives the run: heights, and between two neighbours
        # the larger of the upper one's bottom and the lower one's top margin.
        folds = self._folds
        gaps = sum(max(a.margin_bottom, b.margin_top) for a, b in itertools.pairwise(folds))
        spacer.styles.height = sum(fold.height for fold in folds) + gaps
        spacer.styles.margin = (folds[0].margin_top, 0, folds[-1].margin_bottom, 0)
        self.move_child(spacer, before=folds[0].entry)
        spacer.display = True
        self._folded_at_width = self.size.width

    def unfold(self) -> None:
        """Show the folded entries again (the spacer goes: they take its place, as tall)."""
        if not self._folds:
            return
        for fold in self._folds:
            fold.entry.display = True
        self._folds = []
        self._spacer.display = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._folds and new_value < old_value:
            spacer_end = self._spacer.virtual_region.bottom
            if new_value < spacer_end + self.scrollable_content_region.height // 2:
                self.unfold()

    def on_resize(self) -> None:
        if self._folds and self.size.width != self._folded_at_width:
            self.unfold()

    def _show_count(self) -> None:
        if not self.query_children(
            EarlierEntries
        ):  # the app is closing (a clear queued by a switch)
            return
        folded = set(self.folded)
        hidden = sum(1 for entry in self.entries if not entry.display and entry not in folded)
        self.earlier.display = hidden > 0
        if hidden:
            self.earlier.update(
                Text.assemble(
                    (f"▲ {hidden} earlier entries hidden", "bold"),
                    f" · click or press Enter to show {min(hidden, self.SHOWN_ENTRIES)} more",
                )
            )

    async def _prune(self) -> None:
        excess = len(self.entries) - MAX_WIDGETS
        if excess > 0:
            await self.remove_children(self.entries[:excess])

    def tool_panel(self, call_id: str) -> ToolPanel | None:
        for panel in reversed(list(self.query_children(ToolPanel))):
            if panel.call_id == call_id:
                return panel
        return None


def _settled(entry: Widget) -> bool:
    """Laid out, and its height will not change by itself (no reply or tool still running)."""
    if not entry.outer_size.height or entry.has_class("running"):
        return False
    return not (isinstance(entry, AssistantMessage) and entry.streaming)


def _pretty_arguments(arguments: dict[str, object]) -> str:
    if not arguments:
        return "(no arguments)"
    return json.dumps(arguments, indent=2, ensure_ascii=False)
