"""The launcher: pick a preset, preview its config, edit the main hyperparameters, Enter starts.

Runs training now (live endpoints under the runs directory) are shown first, on a line at the top;
`a` asks to attach to one of them (:class:`LauncherScreen.AttachRequested`); `r` asks for the Runs
screen, every run past and live (:class:`LauncherScreen.RunsRequested`). `L` runs the LR range test
of the form's config in a process of its own (:attr:`LauncherScreen.lr_finder`, off the UI thread)
and Enter on its screen puts the suggestion in the learning rate field.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.syntax import Syntax
from textual import log, on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from tui_train.core import config as cfgmod
from tui_train.core.config import ConfigError, RunConfig
from tui_train.core.errors import first_line
from tui_train.core.live.spawn import run_lr_find
from tui_train.core.lr_find import Curve, SweepError
from tui_train.core.run import endpoint
from tui_train.tui import format as fmt
from tui_train.tui import keys
from tui_train.tui.screens.lr_find_screen import LrFindScreen
from tui_train.tui.screens.run_picker import run_dir_of

OPTIMIZERS: tuple[str, ...] = tuple(cfgmod.field_spec("optim.name")[1]["choices"])
"""Choices of the optimizer field: the ones core.config declares for ``optim.name``."""

GIVEN = "(given config)"
"""List entry for a config handed to build_app that is not a preset on the list."""

LrFinder = Callable[..., Curve]
"""(config, cancel event, **sweep options) -> the LR range test's curve; raises SweepError (one
line) when there is none."""


def subprocess_lr_finder(cfg: RunConfig, cancel: threading.Event, **options: float) -> Curve:
    """The launcher's LR range test: :func:`core.live.spawn.run_lr_find` (torch never loads here);
    ``options``: start, end, steps."""
    return run_lr_find(cfg, cancel=cancel, **options)[0]


def edit_config(base: RunConfig, *, lr: str, batch_size: str, epochs: str, optimizer: str, source: str = "launcher") -> RunConfig:
    """``base`` with the launcher's fields applied, validated through core.config (ConfigError)."""
    raw = cfgmod.to_dict(base)
    for key, text, kind in (("optim.lr", lr, float), ("data.batch_size", batch_size, int), ("train.epochs", epochs, int)):
        try:
            value = kind(text.strip())
        except ValueError:
            what = "a number like 3e-4" if kind is float else "a whole number"
            raise ConfigError(f"{source}: {key}: {text.strip()!r} is not {what}") from None
        section, _, name = key.partition(".")
        raw[section][name] = value
    raw["optim"]["name"] = optimizer
    if optimizer != "sgd":
        raw["optim"]["nesterov"] = False  # nesterov is SGD-only; do not let a switch of optimizer fail on it
    return cfgmod.from_dict(raw, source)


def find_live_runs(runs_dir: Path) -> list:
    """Runs training now under ``runs_dir``, newest first (stale endpoints are cleaned); [] when it
    cannot be read. Cheap: a glob and one connect per pointer."""
    try:
        return list(endpoint.live_runs(runs_dir))
    except (OSError, endpoint.EndpointError) as exc:
        log.warning(f"cannot list live runs in {runs_dir}: {exc}")
        return []


class LauncherScreen(Screen):
    """Presets (bundled, working directory, --presets-dir) with descriptions and an editable form."""

    BINDINGS = [("ctrl+s", "start", "Start"), ("escape", "focus_list", "Presets"), ("a", "attach", "Attach"),
                *keys.bindings(keys.LAUNCHER_KEYS)]

    class StartRequested(Message):
        """The user asked to start a run with this validated config."""

        def __init__(self, config: RunConfig, preset: str) -> None:
            super().__init__()
            self.config = config
            """The validated config, launcher edits applied."""
            self.preset = preset
            """The preset name (or the given config's name)."""

    class AttachRequested(Message):
        """a: the user wants to attach to one of the runs training now (the app asks which)."""

        def __init__(self, runs: Sequence[object]) -> None:
            super().__init__()
            self.runs = list(runs)
            """The live runs shown (:class:`core.run.endpoint.Pointer` entries, newest first)."""

    class RunsRequested(Message):
        """r: the user wants the Runs screen (every run under the runs folder, past and live)."""

    def __init__(self, *, presets_dirs: list[Path] | tuple = (), config: RunConfig | None = None,
                 preset: str | None = None, message: str = "", overrides: list[str] | tuple = (),
                 live: Sequence[object] = ()) -> None:
        super().__init__()
        self.live = list(live)
        """Runs training now (:class:`core.run.endpoint.Pointer` entries, newest first), shown first; `a` attaches."""
        self.overrides = list(overrides)
        """``--set`` texts from the command line, applied to every preset loaded here."""
        self.presets_dirs = list(presets_dirs)
        """Extra folders searched for *.toml presets."""
        self.presets: dict[str, Path] = cfgmod.list_presets(self.presets_dirs)
        """Preset name -> file."""
        self.given = config
        """A config handed in (e.g. a PATH.toml or --set overrides); listed first when not a preset."""
        self.selected = preset if preset in self.presets else (GIVEN if config is not None else None)
        if self.selected is None:
            self.selected = cfgmod.DEFAULT_PRESET if cfgmod.DEFAULT_PRESET in self.presets else next(iter(self.presets), None)
        self.base: RunConfig | None = None
        """The selected preset's config before edits."""
        self.message = message
        """Shown in the error line at start (e.g. why the last run could not start)."""
        self._message_for = self.selected
        self._descriptions: dict[str, str] = {}
        self.lr_finder: LrFinder = subprocess_lr_finder
        """How L sweeps (tests inject one that needs no subprocess)."""
        self.lr_options: dict = {}
        """Sweep options for the default finder (start, end, steps; ``tui-train lr-find --steps``...)."""

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        if self.live:
            yield Static(fmt.literal(self.live_line(), style="bold"), id="live-runs")
        with Horizontal(id="launcher"):
            with Vertical(id="preset-pane"):
                yield Label("Presets", classes="pane-title")
                yield OptionList(*self._options(), id="preset-list")
            with Vertical(id="config-pane"):
                yield Label("Run", classes="pane-title", id="run-title")
                yield Static("", id="preset-description")
                with Grid(id="launch-form"):
                    yield Label("learning rate")
                    yield Input(id="f-lr", compact=True)
                    yield Label("batch size")
                    yield Input(id="f-batch", compact=True, type="integer")
                    yield Label("epochs")
                    yield Input(id="f-epochs", compact=True, type="integer")
                    yield Label("optimizer")
                    yield Select([(o, o) for o in OPTIMIZERS], allow_blank=False, value="adam", id="f-optim", compact=True)
                yield Button("Start (Enter)", id="start", variant="success", compact=True)
                yield Static(fmt.literal(self.message, style="bold red"), id="launch-error")
                with VerticalScroll(id="preview-scroll"):
                    yield Static("", id="preview")
        yield Footer()

    def live_line(self) -> str:
        """'2 runs training · a: attach' (one run: its name), '' when none is."""
        if not self.live:
            return ""
        what = f"{run_dir_of(self.live[0]).name} is training" if len(self.live) == 1 else f"{len(self.live)} runs training"
        return f"{what} · a: attach"

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return bool(self.live) if action == "attach" else True

    def action_runs(self) -> None:
        """r: ask the app for the Runs screen."""
        self.post_message(self.RunsRequested())

    def action_find_lr(self, config: RunConfig | None = None) -> None:
        """L: the LR range test of the form's config (or ``config``: ``tui-train lr-find``'s, swept
        before the form has settled), in a daemon thread (the finder starts a process); Enter on
        its screen writes the suggestion into the learning rate field."""
        try:
            cfg = config if config is not None else self.edited()
        except ConfigError as err:
            self._error(str(err))
            return
        cancel = threading.Event()
        screen = LrFindScreen(cfg.name, "put the suggestion in the learning rate field")

        def done(lr: float | None) -> None:
            cancel.set()  # Esc while it sweeps ends the process
            if lr is not None:
                self.query_one("#f-lr", Input).value = f"{lr:.3g}"

        def sweep() -> None:
            try:
                curve = self.lr_finder(cfg, cancel, **self.lr_options)
                show, arg = screen.show_curve, curve
            except SweepError as e:
                show, arg = screen.show_error, str(e)
            except Exception as e:  # noqa: BLE001 - a finder's failure is shown on its screen, never lost
                show, arg = screen.show_error, first_line(e, typed=True)
            if cancel.is_set():
                return
            try:
                self.app.call_from_thread(show, arg)
            except RuntimeError:  # the app has exited meanwhile
                pass

        self.app.push_screen(screen, done)
        threading.Thread(target=sweep, name="tui-train-lr-find", daemon=True).start()

    def action_attach(self) -> None:
        """a: ask the app to attach to one of the live runs (it shows the picker)."""
        if self.live:
            self.post_message(self.AttachRequested(self.live))

    def _options(self) -> list[Option]:
        out = []
        names = ([GIVEN] if self.given is not None and self.selected == GIVEN else []) + list(self.presets)
        for name in names:
            # names only: the highlighted preset's description is shown beside the list
            out.append(Option(fmt.literal(name if name != GIVEN else f"{self.given.name} {GIVEN}"), id=name))
        return out

    def _description(self, name: str) -> str:
        if name == GIVEN:
            return self.given.description if self.given else ""
        if name not in self._descriptions:
            try:
                raw = cfgmod.read_toml(self.presets[name])
                self._descriptions[name] = str(raw.get("description", "")) if isinstance(raw, dict) else ""
            except Exception:  # noqa: BLE001 - a broken preset still gets listed; choosing it shows the error
                self._descriptions[name] = "(cannot be read)"
        return self._descriptions[name]

    def on_mount(self) -> None:
        options = self.query_one("#preset-list", OptionList)
        if self.selected is not None:
            try:
                options.highlighted = options.get_option_index(self.selected)
            except OptionDoesNotExist:  # e.g. a given config's name that is no preset on the list
                options.highlighted = 0
        else:
            self._error("no presets found (bundled presets missing?)")
        options.focus()
        self._select(self.selected)

    # -- selection and edits ------------------------------------------------------------------
    def _select(self, name: str | None) -> None:
        self.selected = name
        self.base = None
        if name is None:
            return
        try:
            self.base = self.given if name == GIVEN else cfgmod.load_config(name, overrides=self.overrides, extra_dirs=self.presets_dirs)
        except ConfigError as err:
            self._error(str(err))
            self.query_one("#preview", Static).update("")
            return
        except Exception as err:  # noqa: BLE001 - e.g. an unreadable file: say so, do not crash
            self._error(f"{name}: {type(err).__name__}: {err}")
            return
        # the message is about the preset selected at the start: it stays (mounting highlights the
        # list, which selects again) until another preset is chosen
        self.message = self.message if name == self._message_for else ""
        self._error(self.message)
        b = self.base
        self.query_one("#run-title", Label).update(fmt.literal(f"Run: {b.name}"))
        self.query_one("#preset-description", Static).update(fmt.literal(self._description(name) or b.description, style="italic"))
        self.query_one("#f-lr", Input).value = repr(b.optim.lr)
        self.query_one("#f-batch", Input).value = str(b.data.batch_size)
        self.query_one("#f-epochs", Input).value = str(b.train.epochs)
        self.query_one("#f-optim", Select).value = b.optim.name
        self._preview()

    def _error(self, text: str) -> None:
        self.query_one("#launch-error", Static).update(fmt.literal(text, style="bold red") if text else "")

    def edited(self) -> RunConfig:
        """The selected config with the form applied (raises ConfigError)."""
        if self.base is None:
            raise ConfigError("choose a preset that loads without errors first")
        return edit_config(
            self.base,
            lr=self.query_one("#f-lr", Input).value,
            batch_size=self.query_one("#f-batch", Input).value,
            epochs=self.query_one("#f-epochs", Input).value,
            optimizer=str(self.query_one("#f-optim", Select).value),
            source=f"launcher ({self.base.name})",
        )

    def _preview(self) -> None:
        if self.base is None:
            return
        try:
            cfg = self.edited()
        except ConfigError as err:
            self._error(str(err))
            return
        self._error(self.message)  # a valid edit keeps the message about the last run (cleared by another preset)
        self.query_one("#preview", Static).update(Syntax(cfgmod.to_toml(cfg), "toml", theme="ansi_dark", background_color="default"))

    @on(OptionList.OptionHighlighted, "#preset-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.selected or self.base is None:
            self._select(event.option.id)

    @on(OptionList.OptionSelected, "#preset-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id != self.selected:
            self._select(event.option.id)
        self.action_start()

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._preview()

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def _submit(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        """Validate the form and ask the app to start the run (errors stay on screen)."""
        try:
            cfg = self.edited()
        except ConfigError as err:
            self._error(str(err))
            return
        self.post_message(self.StartRequested(cfg, cfg.name if self.selected == GIVEN else (self.selected or cfg.name)))

    def action_focus_list(self) -> None:
        self.query_one("#preset-list", OptionList).focus()
