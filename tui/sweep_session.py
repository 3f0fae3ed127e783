"""One sweep as the app shows it: :class:`SweepSession` drives it (its
:class:`core.sweep.driver.SweepDriver` in a daemon thread of this process, ``tui-train sweep`` on a
terminal) or only watches it (its ``sweep.json`` read again every second: a sweep opened from the
Runs screen, driven elsewhere or by nobody now).

Screens never read the driver's record while the driver changes it: after each change the driver
calls :meth:`SweepSession._changed` in its own thread, which copies the record whole and swaps the
copy in (:attr:`SweepSession.record`, :attr:`SweepSession.version`); the Sweep screen polls the
version on a timer (STYLE.md habit 4: no ``call_from_thread`` from the worker). Requests (prune,
stop a trial, add, extend, stop the sweep) go the other way through the driver's thread-safe
:meth:`~core.sweep.driver.SweepDriver.request`. The trials are processes of their own: leaving
the sweep (quitting without stopping it) leaves them training, and ``tui-train sweep --resume``
adopts them again.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui_train.core.config import ConfigError, load_config
from tui_train.core.errors import first_line
from tui_train.core.sweep import record as R

if TYPE_CHECKING:
    from tui_train.core.sweep.driver import SweepDriver

DriverFactory = Callable[[Callable[[str], None], Callable[[], None]], "SweepDriver"]
"""(say, changed) -> the driver of the sweep (``say`` hears its lines, ``changed`` follows each change)."""

STOP_WAIT = 25.0
"""Seconds a stopped or interrupted sweep's driver is waited for once the app has closed (the
driver waits ``core.sweep.driver.STOP_GRACE`` for its trials to save and end)."""

DRIVER_STATES = ("running", "completed", "interrupted", "stopped")
"""``SweepRecord.state`` values."""


def default_driver_factory(sweep_dir: Path) -> DriverFactory:
    """A factory building the real driver on the record in ``sweep_dir`` (read when it is called)."""
    def make(say: Callable[[str], None], changed: Callable[[], None]) -> SweepDriver:
        from tui_train.core.sweep.driver import SweepDriver

        return SweepDriver(R.load(sweep_dir), sweep_dir, say=say, changed=changed)

    return make


def copy_record(rec: R.SweepRecord) -> R.SweepRecord:
    """A deep copy (``to_json`` copies every list and dict): what screens read."""
    return R.SweepRecord.from_json(rec.to_json())


class SweepSession:
    """A sweep the app drives (``make`` given: :meth:`start` runs its driver in a daemon thread) or
    watches (``make`` None: :meth:`poll` reads ``sweep.json`` again when it changed)."""

    def __init__(self, sweep_dir: Path, make: DriverFactory | None = None) -> None:
        self.sweep_dir = Path(sweep_dir)
        """The sweep folder (its sweep.json)."""
        self.make = make
        """Builds the driver; None: the sweep is only watched (not driven here)."""
        self.driver: SweepDriver | None = None
        """The driver, once :meth:`start` has built it."""
        self.record: R.SweepRecord | None = None
        """The latest copy of the record (replaced whole, never changed in place); None until read."""
        self.version = 0
        """Counts the copies made: a screen redraws when it changed."""
        self.last_line = ""
        """The driver's latest line (trial started, an epoch's value, pruned, ended)."""
        self.error = ""
        """Why the driver failed, or why sweep.json could not be read (one line); '' when fine."""
        self.interrupt = threading.Event()
        """The driver's stop event: set by a hang-up (SIGHUP/SIGTERM). Its running trials save and
        end interrupted; the sweep is recorded ``interrupted`` (exit 130)."""
        self.stop_asked = False
        """S or the quit question's Stop: the sweep ends ``stopped`` (exit 0)."""
        self.quit_when_ended = False
        """The app quits once the driver has ended (the quit question's Stop)."""
        self.left = False
        """The app quit and left the sweep: its running trials train on, ``--resume`` continues."""
        self.code: int | None = None
        """What the driver's ``run`` returned (0 completed or stopped, 130 interrupted); None before."""
        self.thread: threading.Thread | None = None
        """The driver's thread, once started."""
        self._stamp: tuple | None = None  # sweep.json's (size, mtime) at the last read (a watched sweep)

    # -- what screens and the app ask -------------------------------------------------------------
    @property
    def driving(self) -> bool:
        """This app drives the sweep (requests reach its driver)."""
        return self.make is not None

    @property
    def running(self) -> bool:
        """The driver's thread is going (quitting now asks: stop the sweep, or leave it)."""
        return self.thread is not None and self.thread.is_alive()

    @property
    def ended(self) -> bool:
        """The driver was started and its thread has ended."""
        return self.thread is not None and not self.thread.is_alive()

    def state(self) -> str:
        """What the header says: the record's state; 'stopping' while a stopped sweep's trials end;
        'failed' when the driver broke; 'running' for a driver still starting."""
        rec = self.record
        state = rec.state if rec is not None else "running"
        if self.driving and self.error:
            return "failed"
        if self.running and (self.stop_asked or self.interrupt.is_set() or state in ("stopped", "interrupted")):
            return "stopping"
        return state

    def refusal(self) -> str:
        """Why requests cannot reach a driver now; '' when they can."""
        if not self.driving:
            return f"this sweep is not driven here: tui-train sweep --resume {self.sweep_dir}"
        if not self.running:
            return f"the sweep has ended ({self.state()}): tui-train sweep --resume {self.sweep_dir} goes on"
        if self.stop_asked or self.interrupt.is_set():
            return "the sweep is stopping"
        return ""

    def request(self, action: str, number: int | None = None, params: dict | None = None, count: int = 0) -> str:
        """Hand a request to the driver (thread-safe, never blocks): see
        :meth:`core.sweep.driver.SweepDriver.request`. Returns why it was not sent ('' when sent)."""
        refused = self.refusal()
        if refused:
            return refused
        assert self.driver is not None
        self.driver.request(action, number=number, params=params, count=count)
        if action == "stop" and number is None:
            self.stop_asked = True
        return ""

    def check_params(self, params: dict) -> str:
        """Whether a trial with ``params`` is a valid run of the sweep's preset: '' when it is, else
        the one line :func:`core.config.load_config` says."""
        rec = self.record
        if rec is None:
            return "the sweep's record is not read yet"
        try:
            load_config(rec.preset, list(rec.overrides) + R.Trial(0, dict(params)).overrides(), [Path(d) for d in rec.extra_dirs])
        except ConfigError as e:
            return first_line(e)
        except (OSError, ValueError) as e:  # the preset's file is gone or unreadable
            return first_line(e, typed=True)
        return ""

    def exit_code(self, signalled: bool = False) -> int:
        """What ``tui-train sweep`` exits with, as headless: the driver's code once it has ended (0
        completed or stopped, 130 interrupted); 1 when it failed; 130 when it was interrupted or the
        process ``signalled`` before it ended; else 0 (left going, or only watched)."""
        if self.error and self.driving:
            return 1
        if self.code is not None:
            return self.code
        return 130 if self.interrupt.is_set() or signalled else 0

    def closing_line(self) -> str:
        """The line ``tui-train sweep`` prints once the app has closed."""
        where = self.sweep_dir
        if self.error and self.driving:
            return f"tui-train: the sweep failed: {self.error} · {where}"
        if self.left or (self.running and not (self.stop_asked or self.interrupt.is_set())):
            return f"tui-train: left the sweep; its running trials train on · go on: tui-train sweep --resume {where}"
        state = self.record.state if self.record is not None else "running"
        if self.running:
            state = "stopping"
        line = f"tui-train: sweep {state} · {where}"
        best = self.record.best() if self.record is not None else None
        if best is not None and best.value is not None:
            params = " ".join(f"{k}={v}" for k, v in best.params.items())
            line += f" · best: {self.record.metric}={best.value:.6g} {params}".rstrip()
        if state != "completed":
            line += f" · go on: tui-train sweep --resume {where}"
        return line

    # -- driving ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the driver (a watched sweep: read sweep.json) and start its daemon thread."""
        if not self.driving:
            self.poll()
            return
        if self.thread is not None:
            return
        assert self.make is not None
        try:
            self.driver = self.make(self._say, self._changed)
        except (OSError, ValueError) as e:  # sweep.json unreadable (default factory)
            self.error = first_line(e)
            return
        self._changed()  # the plan, shown before the first trial starts
        # a plain daemon thread (as RunSession's): Textual's thread workers are joined when its loop closes
        self.thread = threading.Thread(target=self._run, name="tui-train-sweep", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.driver is not None
        try:
            self.code = self.driver.run(self.interrupt)
        except BaseException as exc:  # noqa: BLE001 - the screen and the exit code say it; the trials go on
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.last_line = traceback.format_exception_only(exc)[-1].strip()
        finally:
            self._changed()

    def _say(self, line: str) -> None:
        self.last_line = line

    def _changed(self) -> None:
        """The driver's record changed (its thread, or this one before it starts): swap in a copy."""
        if self.driver is not None:
            self.record = copy_record(self.driver.record)
            self.version += 1

    def request_stop(self, quit_after: bool = False) -> str:
        """Stop the sweep (S, the quit question's Stop): its running trials save and end
        interrupted, the sweep is recorded ``stopped``; with ``quit_after`` the app quits once the
        driver has ended. Returns why not ('' when asked)."""
        refused = "" if self.stop_asked and self.running else self.request("stop")  # asked already: it is stopping
        if not refused and quit_after:
            self.quit_when_ended = True
        return refused

    def hang_up(self) -> None:
        """The terminal hung up (SIGHUP/SIGTERM): interrupt the sweep, as headless does."""
        self.interrupt.set()

    def finish(self, timeout: float = STOP_WAIT) -> bool:
        """After the app has closed: wait for a stopped or interrupted driver (its trials save and
        end); a sweep left going is not waited for. True when the driver is not running now."""
        thread = self.thread
        if thread is not None and thread.is_alive() and (self.stop_asked or self.interrupt.is_set()):
            thread.join(timeout)
        elif thread is not None and thread.is_alive():
            self.left = True
        return not self.running

    # -- watching ---------------------------------------------------------------------------------
    def poll(self) -> bool:
        """A watched sweep: read sweep.json again when its size or time changed; True when the record changed."""
        path = self.sweep_dir / R.SWEEP_FILE
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError as e:
            self.error = f"cannot read {path}: {first_line(e)}"
            return False
        if stamp == self._stamp:
            return False
        try:
            rec = R.load(self.sweep_dir)
        except ValueError as e:
            self.error = first_line(e)
            return False
        self._stamp, self.record, self.error = stamp, rec, ""
        self.version += 1
        return True
