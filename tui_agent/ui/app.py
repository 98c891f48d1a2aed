"""The llamachat Textual app: a chat screen fed by the agent worker's typed events.

Text is drained from the worker's queue on a timer; all text that arrived in one tick goes to the
reply in a single write, so the UI never handles one message per token. Any other event wakes the
app at once (the worker posts a message), so prompts and the end of a reply are not delayed.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import time
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Collapsible, Footer, Static

from tui_agent.config import Config, save_settings
from tui_agent.errors import LlamachatError
from tui_agent.events import (
    Completed,
    ContextCompacted,
    DownloadProgress,
    Error,
    Event,
    IterationStart,
    ModelLoaded,
    ModelLoadProgress,
    Notice,
    PermissionDecision,
    PermissionRequest,
    ReasoningDelta,
    SessionChanged,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnStatistics,
)
from tui_agent.printable import printable, printable_event, printable_value
from tui_agent.session import Entry, Session, is_remote
from tui_agent.ui.garbage import GarbageSettler
from tui_agent.ui.screens.dialogs import Confirm, ShowText
from tui_agent.ui.screens.history import HistoryScreen
from tui_agent.ui.screens.model_picker import ModelPicker
from tui_agent.ui.screens.permission import PermissionScreen
from tui_agent.ui.screens.theme_picker import ThemePicker
from tui_agent.ui.themes import DEFAULT_THEME, load_themes
from tui_agent.ui.widgets.prompt_input import SLASH_COMMANDS, PromptInput
from tui_agent.ui.widgets.status_bar import StatusBar
from tui_agent.ui.widgets.transcript import (
    AssistantMessage,
    CompactionNotice,
    NoticeLine,
    ToolPanel,
    Transcript,
    UserMessage,
)

# How often streamed text is drained. Each update costs the main thread a few ms, which on a 2-core
# machine comes out of generation: `llamachat bench` measured streaming 300 tokens at 1.28x the
# headless time with 100 ms batches and 1.15x with 150 ms (before the reply tail was made cheap).
PUMP_SECONDS = 0.15


class EventsWaiting(Message):
    """Posted from the worker thread: an event other than text is in the queue."""


# What the user can do next in this app, by the kind of error (the core's hint is general).
_NEXT_STEP = {
    "model_not_found": "/model picks another model",
    "model_load": "/model picks another model",
    "memory": "/model picks a smaller model",
    "context": "/new starts a new session",
}


COMPACTING = "compacting…"
# How /tools shows each tool's permission (as `llamachat tools list`, in words).
_POLICY_WORDS = {
    "allow": ("runs", "green"),
    "ask": ("asks", "yellow"),
    "deny": ("denied", "red"),
}


class LlamachatApp(App[None]):
    # A path, not a name: Textual resolves a name next to the module of the class in use, which
    # for a subclass elsewhere (the benchmark's) is the wrong folder.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "llamachat"
    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("ctrl+n", "new_session", "new session"),
        Binding("ctrl+r", "history", "history"),
        Binding("ctrl+t", "pick_theme", "theme"),
        Binding("ctrl+o", "compact", "compact"),
        Binding("f1", "help", "help"),
        Binding("ctrl+q", "quit", "quit", priority=True),
    ]

    def __init__(
        self, session: Session, config: Config, extra_theme_dirs: list[Path] | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.current_reply: AssistantMessage | None = None
        self.model_ready = False
        self.model_failed = ""
        self.completed_prompts = 0
        self.garbage = GarbageSettler()
        # When the end of the last reply was painted, by the wall clock and by this thread's CPU
        # clock (perf_counter, thread_time: the benchmark reads them).
        self.last_completed_at = 0.0
        self.last_completed_cpu = 0.0
        self.first_frame_at: float | None = None  # wall-clock time of the first painted frame
        self._theme_dirs = extra_theme_dirs

    def compose(self) -> ComposeResult:
        # Kept, not queried: a query walks every widget of a long transcript (each drain of
        # the worker's events checked for the status bar that way: 2/3 of the app's CPU).
        self._transcript = Transcript(id="transcript")
        self._prompt = PromptInput()
        self._status = StatusBar()
        yield self._transcript
        # In a container of their own, these are clipped to it: Textual then skips them when it
        # repaints rows of the transcript (several times a second while a reply streams). A
        # widget directly on the screen is drawn whole on every such repaint.
        with Vertical(id="bottom-bar"):
            yield Static("", id="completions")
            yield self._prompt
            yield self._status
            yield Footer()

    # --- start-up ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._load_themes()
        self.status.set(state="loading model", model=self.session.model_label, progress=0.0)
        self.query_one("#completions").display = False
        # Start the worker (tools, then the model) once the first frame is up: it imports the MCP
        # SDK and llama.cpp, which would hold the GIL while the screen is being drawn.
        self.call_after_refresh(self._first_frame_painted)
        if self.session.initial is not None and self.session.store is not None:
            self.call_after_refresh(self._render_history, self.session.initial.id)
        else:
            self.call_after_refresh(self._welcome)
        self.session.wake = self._wake
        self.set_interval(PUMP_SECONDS, self._wake)
        self.prompt.focus()
        if self.session.store is not None:
            for notice in self.session.store.notices:
                self.notify(notice, severity="warning", timeout=15)
            self._recall_earlier_prompts()
        else:
            self.status.set(saving=False)
        if self.session.history_problem is not None:
            self._ask_to_chat_unsaved(self.session.history_problem)

    @work(group="recall")
    async def _recall_earlier_prompts(self) -> None:
        earlier = await asyncio.to_thread(self.session.recent_prompts)
        # Prompts sent meanwhile come after the earlier ones.
        self.prompt.prompt_history[:0] = earlier

    @work
    async def _ask_to_chat_unsaved(self, problem: LlamachatError) -> None:
        question = f"{problem.message}\n{problem.hint}\n\nChat without saving?"
        if not await self.push_screen_wait(Confirm(question)):
            self.exit(return_code=1, message=str(problem))

    def _first_frame_painted(self) -> None:
        self.first_frame_at = time.time()
        self.session.start()

    def _load_themes(self) -> None:
        loaded = load_themes(self._theme_dirs)
        for theme in loaded.themes.values():
            self.register_theme(theme)
        for problem in loaded.problems:
            self.notify(problem, severity="warning", timeout=10)
        wanted = self.config.ui.theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.notify(
                f"unknown theme {wanted!r} in [ui] theme; using {DEFAULT_THEME}. Pick one with /theme",
                severity="warning",
            )
            wanted = DEFAULT_THEME
        self.theme = wanted

    @property
    def status(self) -> StatusBar:
        return self._status

    @property
    def transcript(self) -> Transcript:
        return self._transcript

    @property
    def prompt(self) -> PromptInput:
        return self._prompt

    @property
    def _widgets_gone(self) -> bool:
        """The app is closing: its widgets are gone, though events may still be queued."""
        return not self._status.is_attached

    # --- events from the worker -------------------------------------------------------------

    def _wake(self) -> None:
        self.post_message(EventsWaiting())

    async def on_events_waiting(self, _: EventsWaiting) -> None:
        # Timer ticks and wake-ups both arrive as messages, so drains never interleave.
        if self._widgets_gone:
            return
        await self.pump_events()

    async def pump_events(self) -> None:
        # Runs of deltas of one kind are written at once: one update per drain, not per token.
        text: list[str] = []
        thoughts: list[str] = []
        while True:
            try:
                # Control characters from the model or a tool never reach the terminal.
                event = printable_event(self.session.events.get_nowait())
            except queue.Empty:
                break
            if isinstance(event, ReasoningDelta):
                if text:
                    await self._write_reply("".join(text))
                    text = []
                thoughts.append(event.text)
                continue
            if thoughts:
                await self._write_reasoning("".join(thoughts))
                thoughts = []
            if isinstance(event, TextDelta):
                text.append(event.text)
                continue
            if text:
                await self._write_reply("".join(text))
                text = []
            await self.handle_event(event)
        if thoughts:
            await self._write_reasoning("".join(thoughts))
        if text:
            await self._write_reply("".join(text))
        elif self.current_reply is not None:
            await self.current_reply.idle()

    async def _write_reasoning(self, text: str) -> None:
        reply = self.current_reply
        if reply is None:
            reply = self.current_reply = AssistantMessage(streaming=True)
            await self.transcript.add(reply)
        await reply.think(text)

    async def _write_reply(self, text: str) -> None:
        reply = self.current_reply
        if reply is None or not reply.text:
            text = text.lstrip()
            if not text:
                return
        if reply is None:
            reply = self.current_reply = AssistantMessage(streaming=True)
            await self.transcript.add(reply)
        await reply.append(text)

    async def _end_reply(self) -> None:
        """Finish the reply being written; a box the model wrote nothing into (it went straight
        to a tool call, failed or was cancelled) goes away."""
        reply, self.current_reply = self.current_reply, None
        if reply is None:
            return
        if reply.text or reply.reasoning:
            await reply.finish()
        else:
            await reply.remove()

    async def handle_event(self, event: Event) -> None:
        status = self.status
        if isinstance(event, DownloadProgress):
            status.set(state="downloading", progress=event.fraction)
        elif isinstance(event, ModelLoadProgress):
            status.set(state="loading model", progress=event.fraction)
        elif isinstance(event, ModelLoaded):
            self.model_ready = True
            status.set(
                state="ready",
                progress=None,
                model=event.model,
                context_size=event.n_ctx,
                remote=is_remote(event.path),
            )
            # Start-up made most of the process's objects (Textual, the MCP SDK, llama.cpp's
            # bindings): freeze them before the first reply, so no collection walks them again.
            self.call_after_refresh(self.garbage.fully)
        elif isinstance(event, IterationStart):
            status.set(state="generating", progress=None)
            # A steady cursor while the model writes: each blink is a repaint taken from it.
            self.prompt.cursor_blink = False
        elif isinstance(event, ToolStart):
            await self._end_reply()
            await self.transcript.add(ToolPanel(event.call_id, event.name, event.arguments))
        elif isinstance(event, PermissionRequest):
            self._ask_permission(event)
        elif isinstance(event, ToolResult):
            self._close_answered_question(event.call_id)
            panel = self.transcript.tool_panel(event.call_id)
            if panel is not None:
                panel.set_result(event.success, event.output, event.denied)
            status.set(state="generating")
        elif isinstance(event, ContextCompacted):
            await self._end_reply()
            await self.transcript.add(
                CompactionNotice(
                    event.messages_before,
                    event.messages_after,
                    event.prompt_tokens,
                    event.context_size,
                    event.summary,
                    event.manual,
                )
            )
            status.set(context_used=event.prompt_tokens)
            if event.manual:
                status.set(state="ready")
        elif isinstance(event, TurnStatistics):
            if event.restored_tokens:
                self.notify(
                    f"context restored ({event.restored_tokens:,} tokens)"
                    f" in {event.restore_seconds:.2f} s",
                    timeout=4,
                )
            status.set(
                context_used=event.prompt_tokens + event.generated_tokens,
                tokens_per_second=event.tokens_per_second,
                time_to_first_token=event.time_to_first_token,
                busy_cores=event.busy_cores,
            )
        elif isinstance(event, Completed):
            await self._completed(event)
        elif isinstance(event, Error):
            await self._end_reply()
            hints = [h for h in (event.hint, _NEXT_STEP.get(event.kind, "")) if h]
            self.notify("\n".join([event.message, *hints]), severity="error", timeout=12)
            await self.transcript.add(NoticeLine(f"error: {event.message}", "error"))
            if not self.model_ready:
                self.model_failed = event.message
                status.set(state="model failed", progress=None)
        elif isinstance(event, Notice):
            if status.info.state == COMPACTING:  # "nothing to compact yet"
                status.set(state="ready")
            self.notify(event.message, timeout=8)
            await self.transcript.add(NoticeLine(event.message))
        elif isinstance(event, SessionChanged) and event.resumed:
            status.set(context_used=event.context_tokens)
        elif isinstance(event, SessionChanged):
            self.current_reply = None
            await self._fresh_transcript()
            self.call_after_refresh(self.garbage.fully)
            status.set(context_used=0)

    async def _completed(self, event: Completed) -> None:
        if (
            event.reason == "cancelled"
            and self.current_reply is not None
            and self.current_reply.text
        ):
            self.current_reply.mark_interrupted()
        if event.reason == "length" and self.current_reply is not None:
            self.current_reply.mark_cut()
        await self._end_reply()
        if event.reason in ("max_iterations", "repeated_tool_call"):
            await self.transcript.add(
                NoticeLine(f"stopped: {event.reason.replace('_', ' ')}", "warning")
            )
        elif event.reason == "cancelled":
            await self.transcript.add(NoticeLine("cancelled", "warning"))
        if self.model_ready:
            self.status.set(state="ready")
        elif event.reason == "cancelled":  # the user stopped the model's download or load
            self.status.set(state="stopped", progress=None)
        self.prompt.cursor_blink = True
        self.call_after_refresh(self._shown_completed)

    def _shown_completed(self) -> None:
        """The end of the reply is on the screen."""
        self.completed_prompts += 1
        self.last_completed_at = time.perf_counter()
        self.last_completed_cpu = time.thread_time()
        self.garbage.after_reply()

    def _close_answered_question(self, call_id: str) -> None:
        """A question the worker no longer waits for (an Esc that came while it was on its
        way here answered it) must not stay on screen waiting for keys. Checked after the next
        refresh: a question pushed in this same drain is not on the screen stack yet."""

        def close() -> None:
            screen = self.screen
            if isinstance(screen, PermissionScreen) and screen.request.call_id == call_id:
                self.pop_screen()

        self.call_after_refresh(close)

    def _ask_permission(self, request: PermissionRequest) -> None:
        panel = self.transcript.tool_panel(request.call_id)
        if panel is not None:
            panel.waiting()
        self.status.set(state="waiting for permission")

        def answered(decision: object) -> None:
            assert isinstance(decision, PermissionDecision)
            if panel is not None:
                panel.resume_running()
            self.status.set(state="generating")
            self.session.reply_permission(request.request_id, decision)

        self.push_screen(PermissionScreen(request), answered)

    # --- the prompt -------------------------------------------------------------------------

    @on(PromptInput.PageKey)
    def _page(self, event: PromptInput.PageKey) -> None:
        if event.up:
            self.transcript.scroll_page_up(animate=False)
        else:
            self.transcript.scroll_page_down(animate=False)

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        self.query_one("#completions").display = False
        if event.text.startswith("/"):
            await self.run_slash_command(event.text)
            return
        if self.model_failed:
            self.notify(
                f"the model could not be loaded: {self.model_failed}. Pick another with /model",
                severity="error",
            )
            return
        user = UserMessage(event.text)
        if self.current_reply is None and not self.session.busy:
            # The reply's box comes with the prompt: one layout pass for both, the user sees at
            # once that the model is reading, and its first words are drawn without a layout.
            self.current_reply = AssistantMessage(streaming=True)
            await self.transcript.add(user, self.current_reply)
        else:  # a reply is still being written: this prompt waits its turn, its box too
            await self.transcript.add(user)
        self.transcript.anchor()
        if not self.model_ready:
            self.notify("the model is still loading; your message runs as soon as it is ready")
        self.session.send(event.text)

    @on(Collapsible.Expanded)
    @on(Collapsible.Collapsed)
    def _back_to_the_prompt(self) -> None:
        """A click on a panel's title focuses that title: typing then went nowhere and Enter
        folded the panel again. The prompt gets the focus back once the panel has opened."""
        if self.screen is self.default_screen:
            self.call_after_refresh(self.prompt.focus)

    @on(PromptInput.Changed)
    def _show_completions(self, event: PromptInput.Changed) -> None:
        box = self.query_one("#completions", Static)
        options = self.prompt.completions()
        box.display = bool(options)
        if options:
            box.update(
                Text.assemble(
                    *[
                        (f"{name}  ", "bold") if i == 0 else f"{name}  "
                        for i, name in enumerate(options)
                    ],
                    ("   Tab completes · ", "dim"),
                    (SLASH_COMMANDS[options[0]], "dim"),
                )
            )

    async def run_slash_command(self, text: str) -> None:
        name, _, argument = text.partition(" ")
        actions = {
            "/new": self.action_new_session,
            "/compact": self.action_compact,
            "/theme": self.action_pick_theme,
            "/tools": self.action_tools,
            "/history": self.action_history,
            "/help": self.action_help,
            "/quit": self.action_quit,
        }
        if name == "/model" and argument.strip():
            self.switch_model(argument.strip())
        elif name == "/model":
            self.action_pick_model()
        elif name in actions:
            result = actions[name]()
            if inspect.isawaitable(result):
                await result
        else:
            self.notify(f"unknown command {name}; type / to see the commands", severity="warning")

    # --- actions ----------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if self.session.busy:
            self.session.cancel()
            self.status.set(state="cancelling")
        elif self.session.loading:
            # Stops a download or a load at its next progress report.
            self.session.cancel()
            self.status.set(state="stopping", progress=None)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain text, whatever the caller says (Textual's screens ask for
        markup): they carry session titles, tool names, paths and messages from the core, and a
        title like "[/INST] …" read as markup crashed the app."""
        super().notify(
            printable(message),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def action_new_session(self) -> None:
        self.session.new_session()
        self.notify("new session")

    def action_compact(self) -> None:
        self.session.compact()
        if not self.session.busy:  # after a reply, the compaction waits for it: "generating"
            self.status.set(state=COMPACTING)

    @work
    async def action_pick_model(self) -> None:
        from tui_agent.session import choice_for, model_choices

        running = self.session.model_label
        # It reads the Hugging Face cache and GGUF headers: seconds on a slow disk.
        offered = [running, *self.session.config.model.servers]
        choices = await asyncio.to_thread(model_choices, also=offered)
        current = choice_for(running, choices)
        chosen = await self.push_screen_wait(ModelPicker(choices, current))
        if chosen is None:
            return
        if current is not None and chosen == current.spec:
            self.notify(f"already running {running}")
            return
        self.switch_model(chosen)

    def switch_model(self, spec: str) -> None:
        from tui_agent.session import is_remote, parse_model_spec

        try:
            if not is_remote(spec):
                parse_model_spec(spec)
        except LlamachatError as exc:
            self.notify(f"{exc.message}\n{exc.hint}", severity="error")
            return
        self.model_ready, self.model_failed = False, ""
        self.status.set(
            state="stopping the current model",
            model=spec,
            progress=None,
            context_used=0,
            tokens_per_second=0.0,  # the figures were the old model's
            time_to_first_token=0.0,
        )
        self._switch_in_background(spec)
        self.current_reply = None
        self.call_later(self._fresh_transcript)

    @work(thread=True, exclusive=True, group="switch-model")
    def _switch_in_background(self, spec: str) -> None:
        """The old worker is stopped and joined here, off the event loop (a tool call may take
        a moment to let go); the new one's load progress then shows in the status line."""
        self.session.switch_model(spec)

    def action_tools(self) -> None:
        tools = self.session.tool_policies()
        specs = [spec for spec, _ in tools]
        body = Text()
        for spec, policy in tools:
            # Names and descriptions come from MCP servers: shown, not obeyed.
            body.append(printable(spec.name), style="bold")
            shown, style = _POLICY_WORDS.get(policy, ("", ""))
            body.append(f"  {shown}", style=style)
            first_line = (spec.description.splitlines() or [""])[0]
            body.append(printable(f"  [{spec.server}]  {first_line}\n"))
        body.append(
            "\nruns: without asking · asks: you decide each call · denied: never runs"
            " ([permissions] in the config; a rule on a call's arguments may decide otherwise)",
            style="dim",
        )
        self.push_screen(
            ShowText(f"{len(specs)} tools", body if specs else "no tools yet (still starting?)")
        )

    def action_help(self) -> None:
        body = Text()
        body.append("Keys\n", style="bold underline")
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            body.append(f"  {binding.key:<10} {binding.description}\n")
        body.append(
            "  enter      send\n  ctrl+j     new line\n  up/down    recall earlier prompts\n"
            "  pgup/pgdn  scroll the conversation\n"
            "  ctrl+p     command palette\n\n"
        )
        body.append("Commands\n", style="bold underline")
        for name, description in SLASH_COMMANDS.items():
            body.append(f"  {name:<10} {description}\n")
        self.push_screen(ShowText("Help", body))

    @work
    async def action_pick_theme(self) -> None:
        names = sorted(self.available_themes)
        chosen = await self.push_screen_wait(ThemePicker(names, self.theme))
        if chosen:
            self.config.ui.theme = chosen
            if self.config.path is not None:
                save_settings(self.config.path, {"ui": {"theme": chosen}})
            self.notify(f"theme {chosen} saved")

    @work
    async def action_history(self) -> None:
        if self.session.store is None:
            problem = self.session.history_problem
            self.notify(
                problem.message if problem else "history is off in this run (--no-save)",
                severity="warning",
            )
            return
        session_id = await self.push_screen_wait(HistoryScreen(self.session.store))
        if session_id:
            if self.session.busy:
                self.session.cancel()
            await asyncio.to_thread(self.session.resume, session_id)
            await self._render_history(session_id)

    async def _fresh_transcript(self) -> None:
        if self._widgets_gone:
            return
        await self.transcript.clear()
        await self._welcome()

    async def _welcome(self) -> None:
        """An empty chat says what it is and where to start (a prompt typed at once is not
        cleared away for it)."""
        await self.transcript.welcome(
            f"llamachat on {self.session.model_label}. Type a message and press Enter;"
            " / lists the commands, F1 the keys, Ctrl+R your earlier sessions."
        )

    async def _render_history(self, session_id: str) -> None:
        """Restore a saved session's transcript, tool panels included."""
        assert self.session.store is not None
        transcript = self.transcript
        await transcript.clear()
        self.current_reply = None
        store = self.session.store
        stored = await asyncio.to_thread(store.entries, session_id)
        # Stored text is shown, not obeyed, like the events it was recorded from.
        entries = [
            replace(e, content=printable(e.content), data=printable_value(e.data)) for e in stored
        ]
        results = {e.data.get("tool_call_id"): e for e in entries if e.role == "tool"}
        await transcript.add(*[w for entry in entries for w in _widgets_for(entry, results)])
        transcript.anchor()
        self.call_after_refresh(self.garbage.fully)
        title = (await asyncio.to_thread(store.get_session, session_id)).title
        self.notify(f"resumed {title!r}")

    def get_system_commands(self, screen: Screen[object]):  # type: ignore[no-untyped-def]
        # Textual's own "Theme" changes the theme without saving it; "Pick theme" saves it.
        yield from (c for c in super().get_system_commands(screen) if c.title != "Theme")
        yield SystemCommand(
            "New session", "Start a new conversation (/new)", self.action_new_session
        )
        yield SystemCommand("Compact", "Summarize old messages now (/compact)", self.action_compact)
        yield SystemCommand(
            "History", "Browse, search and resume sessions (/history)", self.action_history
        )
        yield SystemCommand(
            "Pick theme", "Choose a colour theme with live preview (/theme)", self.action_pick_theme
        )
        yield SystemCommand(
            "Switch model", "Pick the model to run (/model)", self.action_pick_model
        )
        yield SystemCommand("Tools", "List the tools (/tools)", self.action_tools)
        yield SystemCommand("Help", "Keys and commands (/help)", self.action_help)

    def on_unmount(self) -> None:
        self.garbage.release()

    async def action_quit(self) -> None:
        self.session.close()
        self.exit()


def _widgets_for(entry: Entry, results: dict[object, Entry]) -> list[Widget]:
    """The transcript widgets for one stored entry (tool panels get their stored result)."""
    if entry.kind == "compaction":
        d = entry.data
        return [
            CompactionNotice(
                d.get("messages_before", 0),
                d.get("messages_after", 0),
                d.get("prompt_tokens", 0),
                d.get("context_size", 0),
                entry.content,
                bool(d.get("manual")),
            )
        ]
    if entry.kind != "message" or entry.role not in ("user", "assistant"):
        return []
    if entry.role == "user":
        return [UserMessage(entry.content)]
    widgets: list[Widget] = []
    reasoning = str(entry.data.get("reasoning", ""))
    if entry.content or entry.interrupted or reasoning:
        widgets.append(AssistantMessage(entry.content, entry.interrupted, reasoning=reasoning))
    for call in entry.data.get("tool_calls", []):
        result = results.get(call["id"])
        restored = None
        if result is not None:
            restored = (
                result.data.get("success", True) is not False,
                result.content,
                bool(result.data.get("denied")),
            )
        widgets.append(ToolPanel(call["id"], call["name"], call.get("arguments", {}), restored))
    return widgets
