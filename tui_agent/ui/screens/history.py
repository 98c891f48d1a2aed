"""The history browser: sessions, full-text search, a preview, resume, rename, delete, export.

Every query runs on a worker thread and its rows come back to the event loop: SQLite may wait
seconds for another process's lock, and the screen must keep answering keys meanwhile. A query
that comes back after the list it was for was cleared (a new search) is dropped.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Markdown, Static

from tui_agent.printable import printable
from tui_agent.session import (
    SearchHit,
    SessionStore,
    SessionSummary,
    delete_saved_session,
    export_markdown,
)
from tui_agent.ui.screens.dialogs import AskText, Confirm

PAGE_SIZE = 60
PREVIEW_ENTRIES = 40


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


class HistoryScreen(Screen[str | None]):
    """Dismisses with the id of the session to resume, or None."""

    BINDINGS = [
        Binding("escape", "close", "back"),
        Binding("enter", "resume", "resume", priority=True),
        # Priority: the search box's own Ctrl+E (end of line) and Ctrl+D (delete) would swallow
        # the keys the footer shows while it has the focus.
        Binding("ctrl+e", "export", "export", priority=True),
        Binding("ctrl+r", "rename", "rename"),
        Binding("ctrl+d", "delete", "delete", priority=True),
        Binding("ctrl+f", "focus_search", "search"),
    ]

    def __init__(self, store: SessionStore) -> None:
        super().__init__()
        self.store = store
        self.loaded = 0
        self.exhausted = False
        self.searching = False
        self._preview_timer: Timer | None = None
        self.first_page_at: float | None = None  # when the first page was painted (perf_counter)
        self._search_timer: Timer | None = None
        # Bumped whenever the list is cleared: rows fetched for an older list are dropped.
        self._list_version = 0
        self._page_pending = False
        self._cursor_after_reload: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("History", id="history-title")
        yield Input(placeholder="Search every message and tool result…", id="history-search")
        with Horizontal(id="history-body"):
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="history-preview"):
                yield Markdown("", id="history-preview-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("updated", "msgs", "title")
        self.load_page()
        table.focus()

    def _painted(self) -> None:
        self.first_page_at = time.perf_counter()

    def load_page(self) -> None:
        """Ask for the next page of sessions (lazy: 10,000 sessions open as fast as 100)."""
        if self.exhausted or self.searching or self._page_pending:
            return
        self._page_pending = True
        self._fetch_page(self.loaded, self._list_version)

    @work(thread=True, group="history-page")
    def _fetch_page(self, offset: int, version: int) -> None:
        sessions = self.store.list_sessions(PAGE_SIZE, offset)
        count = self.store.count_sessions()
        self.app.call_from_thread(self._add_page, sessions, count, version)

    def _add_page(self, sessions: list[SessionSummary], count: int, version: int) -> None:
        self._page_pending = False
        if version != self._list_version or not self.is_attached:
            return
        table = self.query_one(DataTable)
        for s in sessions:
            # Cells given as str are read as markup: a title is text, shown as written.
            title = Text(printable(s.title) or "untitled")
            table.add_row(_when(s.updated), str(s.message_count), title, key=s.id)
        self.loaded += len(sessions)
        self.exhausted = len(sessions) < PAGE_SIZE
        self.sub_title = f"{count:,} sessions"
        self._restore_cursor()
        if self.first_page_at is None:
            self.call_after_refresh(self._painted)

    def _clear_list(self) -> None:
        self.query_one(DataTable).clear()
        self._list_version += 1
        self._page_pending = False
        self.loaded, self.exhausted = 0, False

    def _restore_cursor(self) -> None:
        table = self.query_one(DataTable)
        if self._cursor_after_reload is not None and table.row_count:
            table.move_cursor(row=min(self._cursor_after_reload, table.row_count - 1))
            self._cursor_after_reload = None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= self.loaded - 10:
            self.load_page()
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.12, self.show_preview)

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def show_preview(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            self.query_one("#history-preview-text", Markdown).update("*no session selected*")
            return
        self._fetch_preview(session_id)

    @work(thread=True, exclusive=True, group="history-preview")
    def _fetch_preview(self, session_id: str) -> None:
        text = export_markdown(self.store, session_id)
        lines = text.splitlines()
        if len(lines) > PREVIEW_ENTRIES * 6:
            text = (
                "\n".join(lines[: PREVIEW_ENTRIES * 6]) + "\n\n*… open the session to see the rest*"
            )
        self.app.call_from_thread(self._show_preview, session_id, printable(text))

    def _show_preview(self, session_id: str, text: str) -> None:
        if self.is_attached and self.selected_id() == session_id:  # not one the cursor left
            self.query_one("#history-preview-text", Markdown).update(text)

    @on(Input.Changed, "#history-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.15, lambda: self.run_search(event.value))

    def run_search(self, query: str) -> None:
        self._clear_list()
        if not query.strip():
            self.searching = False
            self.load_page()
            return
        self.searching = True
        self._fetch_hits(query, self._list_version)

    @work(thread=True, exclusive=True, group="history-search")
    def _fetch_hits(self, query: str, version: int) -> None:
        hits = self.store.search(query, limit=200)
        self.app.call_from_thread(self._show_hits, hits, version)

    def _show_hits(self, hits: list[SearchHit], version: int) -> None:
        if version != self._list_version or not self.is_attached:
            return
        table = self.query_one(DataTable)
        for hit in hits:
            table.add_row(
                _when(hit.updated),
                "",
                Text(printable(f"{hit.title} — {hit.snippet}")),
                key=hit.session_id,
            )
        self.sub_title = f"{len(hits)} matching sessions"
        self._restore_cursor()

    @on(Input.Submitted, "#history-search")
    def _search_submitted(self) -> None:
        self.query_one(DataTable).focus()

    def action_focus_search(self) -> None:
        self.query_one("#history-search", Input).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_resume(self) -> None:
        if self.focused is self.query_one("#history-search"):
            self.query_one(DataTable).focus()
            return
        session_id = self.selected_id()
        if session_id is not None:
            self.dismiss(session_id)

    @work
    async def action_rename(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        current = (await asyncio.to_thread(self.store.get_session, session_id)).title
        title = await self.app.push_screen_wait(AskText("New title:", current))
        if title:
            await asyncio.to_thread(self.store.rename, session_id, title)
            self._reload()

    @work
    async def action_delete(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        session = await asyncio.to_thread(self.store.get_session, session_id)
        question = (
            f"Delete {session.title!r} ({session.message_count} messages)? This cannot be undone."
        )
        if await self.app.push_screen_wait(Confirm(question)):
            await asyncio.to_thread(delete_saved_session, self.store, session_id)
            self.notify(f"deleted {session.title!r}")
            self._reload()

    @work
    async def action_export(self) -> None:
        session_id = self.selected_id()
        if session_id is None:
            return
        # Asked, not guessed: it used to land in whatever folder llamachat was started from.
        suggested = Path(self.store.path).parent / "exports" / f"llamachat-{session_id}.md"
        answer = await self.app.push_screen_wait(
            AskText("Export as Markdown to (Enter writes, Esc cancels):", str(suggested))
        )
        if not answer or not answer.strip():
            return
        target = Path(answer.strip()).expanduser()
        text = await asyncio.to_thread(export_markdown, self.store, session_id)
        try:
            await asyncio.to_thread(_write_file, target, text)
        except OSError as exc:
            self.notify(f"could not export to {target}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"exported to {target.resolve()}")

    def _reload(self) -> None:
        self._cursor_after_reload = self.query_one(DataTable).cursor_row
        query = self.query_one("#history-search", Input).value
        if query.strip():
            self.run_search(query)
        else:
            self._clear_list()
            self.load_page()


def _write_file(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
