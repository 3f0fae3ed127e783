"""What the command line asks of the TUI: :class:`AppOptions`, frozen, built once by ``build_app``.

Plain Python (no textual, no torch): the CLI checks ``--on-hangup`` against :data:`HANGUP_CHOICES`
before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_train.core.config import RunConfig

POLL_INTERVAL = 0.1
"""Seconds between two drains of the event queue (10 Hz)."""

HANGUP_CHOICES = ("detach", "stop")
"""What a hang-up of this terminal (SIGHUP/SIGTERM) does to a detachable run: leave it going, or end it."""


@dataclass(frozen=True, kw_only=True)
class AppOptions:
    """The app's options: what it opens on, where runs live, what a hang-up does (see ``build_app``)."""

    config: RunConfig | None = None
    """Config handed in (from the CLI), or None."""
    preset: str | None = None
    """Its preset name."""
    runs_dir: Path = Path("runs")
    """Where runs are written."""
    presets_dirs: tuple[Path, ...] = ()
    """Extra folders with *.toml presets."""
    start_immediately: bool = False
    """Go straight to the dashboard when a config is given."""
    resume: Path | None = None
    """Checkpoint or run directory the first run continues (the default factory only)."""
    overrides: tuple[str, ...] = ()
    """``--set`` overrides from the command line: the launcher applies them to the presets it loads."""
    attach: Path | None = None
    """A live run's directory: the app opens its dashboard, attached (no launcher)."""
    live: tuple = ()
    """Live runs to pick from at start (:class:`core.run.endpoint.Pointer` entries), when not ``attach``."""
    on_hangup: str = "detach"
    """'detach' (the run goes on) or 'stop' (Interrupt, save, end) when this terminal hangs up."""
    runs_screen: bool = False
    """Open on the Runs screen (``tui-train runs``; Esc there quits), when not ``attach`` or ``live``."""
    runs_query: str = ""
    """The Runs screen's filter as it opens (``tui-train runs --filter``)."""
    lr_find: dict | None = None
    """``tui-train lr-find`` on a terminal: the launcher opens with the LR range test of the
    given config running, with these sweep options (start_lr, end_lr, steps)."""
    sweep: Path | None = None
    """A sweep folder (``tui-train sweep`` on a terminal): the app opens on its Sweep screen and drives
    the sweep (its driver in a thread of this process), when not ``attach``, ``live``."""
    poll_interval: float = POLL_INTERVAL
    """Seconds between event drains."""

    def __post_init__(self) -> None:
        if self.on_hangup not in HANGUP_CHOICES:
            raise ValueError(f"on_hangup: {self.on_hangup!r} is not one of {', '.join(HANGUP_CHOICES)}")
        for name, value in (("runs_dir", Path(self.runs_dir)), ("presets_dirs", tuple(Path(p) for p in self.presets_dirs)),
                            ("resume", Path(self.resume) if self.resume else None), ("overrides", tuple(self.overrides)),
                            ("attach", Path(self.attach) if self.attach else None), ("live", tuple(self.live or ())),
                            ("sweep", Path(self.sweep) if self.sweep else None)):
            object.__setattr__(self, name, value)  # the CLI's lists and strings, as the fields' types
