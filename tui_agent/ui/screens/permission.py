"""The permission prompt: the agent waits here until the user decides."""

from __future__ import annotations

import json
import time

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui_agent.events import PermissionDecision, PermissionRequest

# Keys pressed this soon after the prompt appears are ignored: they were meant for the prompt input.
GRACE_SECONDS = 0.4


class PermissionScreen(ModalScreen[PermissionDecision]):
    BINDINGS = [
        Binding("y", "decide('once')", "allow once"),
        Binding("s", "decide('session')", "allow for this session"),
        Binding("a", "decide('always')", "always allow"),
        Binding("n", "deny", "deny"),
        # Here, not the app's Esc (cancel the turn): in the reason field it means "deny without
        # a reason" and the model carries on.
        Binding("escape", "escape", show=False),
    ]

    def __init__(self, request: PermissionRequest) -> None:
        super().__init__()
        self.request = request
        self.armed_at = float("inf")  # armed once the prompt is on screen
        self._asking_reason = False

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(id="permission-dialog"):
            yield Static(
                Text.assemble(("Allow ", "bold"), (request.tool, "bold reverse"), ("?", "bold")),
                id="permission-title",
            )
            yield Static(Text(f"Why it asks: {request.reason}"), classes="permission-reason")
            if request.checks:
                yield Static(
                    Text("\n".join(f"  {line}" for line in request.checks)),
                    id="permission-checks",
                )
            with VerticalScroll(id="permission-details"):
                yield Static(
                    Syntax(
                        json.dumps(request.arguments, indent=2, ensure_ascii=False),
                        "json",
                        word_wrap=True,
                    )
                )
                if request.diff:
                    yield Static(
                        Syntax(request.diff, "diff", theme="ansi_dark", word_wrap=True),
                        id="permission-diff",
                    )
            yield Static(
                Text.assemble(
                    ("y", "bold"),
                    " allow once   ",
                    ("s", "bold"),
                    " allow for this session   ",
                    ("a", "bold"),
                    f" always allow: {request.rule}   ",
                    ("n", "bold"),
                    " deny",
                ),
                id="permission-keys",
            )
            yield Input(
                placeholder="Why not? (optional; Enter to deny, Esc to deny without a reason)",
                id="deny-reason",
            )

    def on_mount(self) -> None:
        self.query_one("#deny-reason", Input).display = False
        self.armed_at = time.monotonic() + GRACE_SECONDS

    def _armed(self) -> bool:
        return time.monotonic() >= self.armed_at and not self._asking_reason

    def action_decide(self, scope: str) -> None:
        if self._armed():
            self.dismiss(PermissionDecision(True, scope))

    def action_deny(self) -> None:
        if not self._armed():
            return
        self._asking_reason = True
        field = self.query_one("#deny-reason", Input)
        field.display = True
        field.focus()

    @on(Input.Submitted, "#deny-reason")
    def _deny_with_reason(self, event: Input.Submitted) -> None:
        self.dismiss(PermissionDecision(False, "once", event.value.strip()))

    def action_escape(self) -> None:
        if self._asking_reason:
            self.dismiss(PermissionDecision(False, "once"))
        else:  # Esc while asked: cancel the turn, as everywhere else
            self.app.action_cancel()  # type: ignore[attr-defined]
