"""One-line text of an exception, for messages shown without a traceback (CLI, TUI, run log).

Two shapes, both in use: :func:`one_line` names the type and folds every line of the text (a
user's exception, whose later lines may say what went wrong); :func:`first_line` keeps the first
line alone (library errors, whose first line is the message and the rest detail). Also the
start-up signal handling, and :class:`ConfigError`, which core.config and core.target both raise.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A preset or override is invalid. ``str(err)`` is a complete one-line message (raised by
    core.config and core.target; here so that both import it without importing each other)."""



def one_line(exc: BaseException) -> str:
    """``"TypeError: message"`` on a single line (newlines folded, long text shortened to 300 characters)."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def first_line(exc: BaseException, limit: int | None = None, *, typed: bool = False) -> str:
    """The first line of the exception's text, cut at ``limit`` characters; its type name when it has
    no text. ``typed`` puts the type name in front: ``"OSError: [Errno 28] No space left on device"``."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if limit is not None:
        line = line[:limit]
    if typed:
        return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return line or type(exc).__name__


class StartInterrupted(BaseException):
    """A signal (SIGINT, SIGTERM, SIGHUP) that arrived while the command was still starting, before
    training began (tui.cli installs the handler that raises it). A BaseException, so that neither
    user-code wrappers (``except Exception``) nor Click (which turns KeyboardInterrupt into
    "Aborted!" and exit 1) take it for something else."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        """The signal's number."""


_STARTUP_HANDLERS: dict = {}
"""Signal -> the handler it had before :func:`catch_startup_signals` (empty when not catching)."""


def catch_startup_signals() -> None:
    """Until training begins, SIGINT, SIGTERM and SIGHUP raise :class:`StartInterrupted`: the
    command unwinds (a run directory being made is removed, Trainer.prepare) and says so in one
    line, exit 130. Python's defaults would end a SIGTERM'd start as 143 with no word, and a
    Ctrl+C with a traceback (issue 15). A signal that was ignored (nohup's SIGHUP) stays ignored.
    Used by the CLI and by the TUI's trainer process (core.train.serve)."""
    import signal

    def handler(signum, frame):
        raise StartInterrupted(signum)

    if not _STARTUP_HANDLERS:
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                _STARTUP_HANDLERS[sig] = signal.signal(sig, handler)


def release_startup_signals() -> None:
    """Training has begun (its own handlers took over) or the TUI takes over: the handlers from before."""
    import signal

    while _STARTUP_HANDLERS:
        sig, previous = _STARTUP_HANDLERS.popitem()
        signal.signal(sig, previous)


__all__ = ["ConfigError", "StartInterrupted", "catch_startup_signals", "first_line", "one_line", "release_startup_signals"]
