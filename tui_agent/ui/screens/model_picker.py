"""Pick the model to run: Enter switches to the highlighted one, Esc goes back."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui_agent.printable import printable
from tui_agent.session import ModelChoice, format_bytes


class ModelPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, choices: list[ModelChoice], current: ModelChoice | None) -> None:
        super().__init__()
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(
                "Model (Enter switches: a new session starts, this one stays in the history ·"
                " Esc cancels · other models: /model PATH, org/repo:file.gguf or a server's URL)"
            )
            yield OptionList(
                *[Option(self._label(choice), id=choice.spec) for choice in self.choices],
                id="model-list",
            )

    def _label(self, choice: ModelChoice) -> Text:
        running = choice is self.current
        size = choice.size
        # File names come from the cache folder: shown, not sent to the terminal.
        return Text.assemble(
            ("● " if running else "  ", "bold"),
            (printable(choice.spec), "bold"),
            ("  running" if running else "", "bold"),
            (f"  {format_bytes(size)}" if size is not None else "", "dim"),
            (f"  {printable(choice.origin)}", "dim"),
        )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
