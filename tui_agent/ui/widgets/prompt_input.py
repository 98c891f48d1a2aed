"""The prompt: multi-line, Enter sends, Ctrl+J (or Shift+Enter) adds a newline, Up/Down recall,
PageUp/PageDown scroll the transcript."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

SLASH_COMMANDS = {
    "/new": "start a new session",
    "/compact": "summarize old messages now",
    "/model": "pick the model to run, or /model NAME (a preset, a path, org/repo:file)",
    "/theme": "pick a colour theme (live preview)",
    "/tools": "list the tools and their permissions",
    "/history": "browse, search and resume sessions",
    "/help": "keys and commands",
    "/quit": "leave llamachat",
}


class PromptInput(TextArea):
    @dataclass
    class Submitted(Message):
        text: str

    @dataclass
    class Changed(Message):
        text: str

    @dataclass
    class PageKey(Message):
        """PageUp/PageDown while the prompt fits its box: the transcript's, not the prompt's."""

        up: bool

    def __init__(self) -> None:
        super().__init__(id="prompt", soft_wrap=True, show_line_numbers=False, compact=True)
        self.prompt_history: list[str] = []
        self._recall: int | None = None
        self.placeholder = "Message llamachat…  (Enter sends · Ctrl+J newline · / for commands)"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            self._submit()
        elif event.key in ("ctrl+j", "shift+enter"):
            event.prevent_default()
            event.stop()
            self.insert("\n")
        elif event.key in ("pageup", "pagedown") and not self.max_scroll_y:
            event.prevent_default()
            event.stop()
            self.post_message(self.PageKey(up=event.key == "pageup"))
        elif event.key == "tab" and self.text.startswith("/"):
            event.prevent_default()
            event.stop()
            self.complete_command()
        elif event.key == "up" and self.cursor_location[0] == 0 and self.prompt_history:
            event.prevent_default()
            event.stop()
            self._recall_step(-1)
        elif (
            event.key == "down"
            and self.cursor_location[0] == self.document.line_count - 1
            and self._recall is not None
        ):
            event.prevent_default()
            event.stop()
            self._recall_step(1)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.post_message(self.Changed(self.text))

    def completions(self) -> list[str]:
        text = self.text.strip()
        if not text.startswith("/") or " " in text:
            return []
        return [c for c in SLASH_COMMANDS if c.startswith(text)]

    def complete_command(self) -> None:
        options = self.completions()
        if options:
            self.text = options[0]
            self.move_cursor(self.document.end)

    def _submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        if not self.prompt_history or self.prompt_history[-1] != text:
            self.prompt_history.append(text)
        self._recall = None
        self.text = ""
        self.post_message(self.Submitted(text))

    def _recall_step(self, step: int) -> None:
        index = (len(self.prompt_history) if self._recall is None else self._recall) + step
        if index >= len(self.prompt_history):
            self._recall = None
            self.text = ""
            return
        self._recall = max(index, 0)
        self.text = self.prompt_history[self._recall]
        self.move_cursor(self.document.end)
