"""A modal question with a few answers, each a button and a key: the shape of every yes/no/maybe dialog.

QuitDialog, ConfirmDialog and NonFiniteDialog are thin subclasses that only say what to ask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_train.tui.format import literal


class Choice(NamedTuple):
    """One answer: a key and a button that both dismiss the dialog with ``value``."""

    key: str
    """The key that picks it (Textual's key name); the button's label names it too."""
    label: str
    """Button label, without the key (shown as 'Label (key)')."""
    value: str | None
    """What the dialog dismisses with (None: no decision)."""
    variant: str = "default"
    """Button variant: default, primary, success, warning or error."""


class ChoiceDialog(ModalScreen[str | None]):
    """A title, a line or two of explanation and a row of buttons; dismisses with the chosen value.

    Each choice's key picks it from anywhere in the dialog; Escape dismisses with ``escape``;
    ``also`` maps further keys to values (no button of their own).
    """

    def __init__(self, title: str, texts: str | Sequence[str], choices: Sequence[Choice | tuple], *,
                 focus: str | None = None, escape: str | None = None, also: Mapping[str, str | None] | None = None) -> None:
        super().__init__()
        self.heading = title
        """Bold first line."""
        self.texts = (texts,) if isinstance(texts, str) else tuple(texts)
        """Explanation paragraphs, in order."""
        self.choices = tuple(Choice(*c) for c in choices)
        """The answers, in button order."""
        self.focus_key = focus if focus is not None else self.choices[0].key
        """Key of the choice whose button has the focus (Enter picks it)."""
        self.escape = escape
        """What Escape dismisses with."""
        self.also = dict(also or {})
        """Extra key -> value (e.g. q in the quit dialog picks its default)."""
        self._by_key = {c.key: c for c in self.choices}
        self._by_button: dict[Button, Choice] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # literal: a dialog's texts may carry a run's name or the engine's reason (habit 23)
            yield Label(literal(self.heading), classes="dialog-title")
            for text in self.texts:
                yield Static(literal(text), classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                for choice in self.choices:
                    button = Button(f"{choice.label} ({choice.key})", variant=choice.variant)
                    self._by_button[button] = choice
                    yield button

    def on_mount(self) -> None:
        next(b for b, c in self._by_button.items() if c.key == self.focus_key).focus()

    def on_key(self, event: events.Key) -> None:
        # a modal screen hides the app's (non-priority) bindings: q in the quit dialog comes here
        if event.key == "escape":
            event.stop()
            self.dismiss(self.escape)
        elif event.key in self._by_key:
            event.stop()
            self.dismiss(self._by_key[event.key].value)
        elif event.key in self.also:
            event.stop()
            self.dismiss(self.also[event.key])

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self._by_button[event.button].value)
