"""Desktop notifications through the terminal that shows a dashboard (issue 25 item 4).

A dashboard writes the escape sequence its terminal understands when the run it shows ends, fails,
reaches its target or pauses for a decision (which events, in which words: core.run.notify's
:class:`~tui_train.core.run.notify.Messages`), plus the bell. The sequence travels with the screen's
own output, so it reaches the person's laptop over a plain SSH connection; the terminal there shows
the notification. Each attached dashboard notifies its own terminal (several people, or one person
in two places); a detached run has no terminal: ``--notify`` URLs reach it (core.run.notify).

- OSC 9 (``ESC ] 9 ; text BEL``): iTerm2, Ghostty, Windows Terminal, WezTerm, kitty;
- OSC 777 (``ESC ] 777 ; notify ; title ; body BEL``): foot, rxvt-unicode, VTE (GNOME Terminal), WezTerm;
- OSC 99 (kitty's own, title and body in two chunks of one notification id).

Which one is chosen from the environment (:func:`protocols`); over SSH little of it arrives but
``TERM``, so an unknown terminal gets OSC 9 and OSC 777 (a terminal ignores an OSC it does not
know; WezTerm shows both). Inside tmux the real terminal is asked of tmux
(``#{client_termname}``, ``#{client_termtype}``) and each sequence is wrapped in tmux's passthrough
(``ESC P tmux; ...ESC doubled... ESC \\``; tmux passes it on only with ``set -g allow-passthrough
on``); inside GNU screen (``TERM=screen*`` without ``TMUX``) in screen's (``ESC P ... ESC \\``).
Every OSC ends with BEL, not ST, so that no ST inside ends a passthrough early. Text from the run
(a run name, a reason from the user's code) is one line with its control characters made visible
(:func:`clean`): it can never end the sequence and inject its own.

``TUI_TRAIN_NOTIFY_TERMINAL`` (or ``--no-notify-terminal``): ``0`` turns them off; ``osc9``,
``osc777``, ``osc99``, ``bell`` (comma-separated) choose exactly those; ``auto`` or unset: as above.

Written through Textual's driver (the queue its writer thread drains, one frame at a time, as
Textual's own bell and OSC 52 clipboard do), so a notification never lands inside a frame's bytes.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from collections.abc import Callable, Mapping

from tui_train.core import events as E
from tui_train.core.run.notify import MESSAGE_EVENTS, Message, Messages
from tui_train.core.text import printable

TERMINAL_ENV = "TUI_TRAIN_NOTIFY_TERMINAL"
"""``0`` (or off, no, false): no terminal notifications; a comma-separated choice of
:data:`PROTOCOLS`; ``auto`` or unset: chosen from the environment (:func:`protocols`)."""

PROTOCOLS = ("osc9", "osc777", "osc99", "bell")
"""What a terminal notification can be written as."""

OFF = ("0", "off", "no", "false", "none")
"""Values of :data:`TERMINAL_ENV` that turn terminal notifications off."""

ESC, BEL, ST = "\x1b", "\x07", "\x1b\\"

Outer = Callable[[], "tuple[str, str] | None"]
"""Asks tmux for its client terminal: (termname, termtype), or None."""


def clean(text: object, limit: int = 300) -> str:
    """``text`` made safe inside an OSC: one line (whitespace runs one space), every control
    character written as a visible escape (``\\x1b``; core.text.printable), at most ``limit`` characters."""
    line = printable(" ".join(str(text).split()))
    return line if len(line) <= limit else line[:limit - 1] + "…"


def tmux_client() -> tuple[str, str] | None:
    """tmux's current client terminal (its TERM and, tmux >= 3.3, the name it reports), or None."""
    try:
        out = subprocess.run(["tmux", "display-message", "-p", "#{client_termname}\t#{client_termtype}"],
                             capture_output=True, text=True, timeout=1.0, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    name, _, kind = out.stdout.strip("\n").partition("\t")
    return name.strip(), kind.strip()


def protocols(env: Mapping[str, str], outer: Outer = tmux_client) -> tuple[str, ...]:
    """The sequences to write for ``env`` (see the module docstring), the bell last."""
    setting = env.get(TERMINAL_ENV, "").strip().lower()
    if setting in OFF:
        return ()
    if setting and setting != "auto":
        chosen = tuple(p for p in re.split(r"[,\s]+", setting) if p in PROTOCOLS)
        if chosen:
            return chosen
    return (*_detect(env, outer), "bell")


def _detect(env: Mapping[str, str], outer: Outer) -> tuple[str, ...]:
    term, kind, local = env.get("TERM", ""), "", env
    if env.get("TMUX"):
        client = outer()
        if client is not None:  # the terminal now attached, not the one that started the tmux server
            (term, kind), local = client, {}
    kind, program = kind.lower(), local.get("TERM_PROGRAM", "")
    if term in ("linux", "dumb") or term.startswith("linux-"):
        return ()  # the Linux console prints an OSC it does not know
    if local.get("KITTY_WINDOW_ID") or term == "xterm-kitty" or "kitty" in kind:
        return ("osc99",)
    if (program in ("iTerm.app", "ghostty") or local.get("LC_TERMINAL") == "iTerm2" or local.get("ITERM_SESSION_ID")
            or local.get("GHOSTTY_RESOURCES_DIR") or term == "xterm-ghostty" or "iterm2" in kind or "ghostty" in kind):
        return ("osc9",)
    if local.get("WT_SESSION"):
        return ("osc9",)
    if (program == "WezTerm" or local.get("WEZTERM_PANE") or term == "wezterm" or "wezterm" in kind
            or term.startswith(("foot", "rxvt")) or "foot" in kind or local.get("VTE_VERSION")):
        return ("osc777",)
    if program == "Apple_Terminal":
        return ()  # Terminal.app shows no OSC notification; its bell marks the window
    return ("osc9", "osc777")


def sequences(protocol: str, title: str, body: str, ident: int = 1) -> list[str]:
    """The OSC(s) of one ``protocol`` for (``title``, ``body``), each ended by BEL."""
    title, body = clean(title, 100), clean(body)
    if protocol == "osc9":  # one text; it starts with "tui-train", never with ConEmu's "<digit>;"
        return [f"{ESC}]9;{title}: {body}{BEL}" if body else f"{ESC}]9;{title}{BEL}"]
    if protocol == "osc777":  # ';' separates the title from the body
        return [f"{ESC}]777;notify;{title.replace(';', ',')};{body}{BEL}"]
    if protocol == "osc99":  # d=0: more of notification i follows; p=body: this chunk is its body
        return [f"{ESC}]99;i=tui-train-{ident}:d=0;{title}{BEL}", f"{ESC}]99;i=tui-train-{ident}:d=1:p=body;{body}{BEL}"]
    return []


def passthrough(seq: str, env: Mapping[str, str]) -> str:
    """``seq`` wrapped for the multiplexer between us and the terminal: tmux (``TMUX`` set) or GNU
    screen (``TERM=screen*`` without ``TMUX``); as it is otherwise."""
    if env.get("TMUX"):
        return f"{ESC}Ptmux;{seq.replace(ESC, ESC + ESC)}{ST}"
    if env.get("TERM", "").startswith("screen"):
        return f"{ESC}P{seq}{ST}"
    return seq


def payload(message: Message, env: Mapping[str, str], outer: Outer = tmux_client, ident: int = 1) -> str:
    """Everything to write to the terminal for ``message`` ('' when notifications are off)."""
    chosen = protocols(env, outer)
    out = [passthrough(seq, env) for p in chosen for seq in sequences(p, message.title, message.body, ident)]
    if "bell" in chosen:
        out.append(BEL)  # tmux and screen pass a bell on themselves (and mark the window)
    return "".join(out)


def app_writer() -> Callable[[str], None] | None:
    """The running Textual app's raw write (its driver's), from the app's thread; None when there is
    none, or it draws nowhere (Pilot's headless driver, the app has exited). Textual has no public
    raw write: its own bell and copy_to_clipboard (OSC 52) write through ``_driver`` too."""
    try:
        from textual._context import active_app

        app = active_app.get()
    except (ImportError, LookupError):
        return None
    driver = getattr(app, "_driver", None)
    if driver is None or app.is_headless:
        return None
    return driver.write


class TerminalNotices:
    """One dashboard's notifications in its own terminal. The training thread :meth:`mark` s the
    events that happen now (an attached viewer first gets the run's history: a pause long answered,
    an earlier end of a resumed run are not news); the app's thread :meth:`follow` s every event in
    order and writes the notification of a marked one."""

    def __init__(self, enabled: bool = True, env: Mapping[str, str] | None = None,
                 writer: Callable[[], Callable[[str], object] | None] | None = None, outer: Outer | None = None) -> None:
        self.enabled = enabled
        """False for a replayed run (nothing happens now)."""
        self.env = env
        """The environment that decides the sequences (None: os.environ when one is written)."""
        self.writer = writer if writer is not None else app_writer
        """Where the sequences go now (the app's driver), or None."""
        self.outer = outer if outer is not None else tmux_client
        """How tmux's client terminal is asked."""
        self.messages = Messages()
        """Which events are worth a notification."""
        self.sent: list[Message] = []
        """The notifications written (newest last; tests read them)."""
        self._now: deque[E.Event] = deque()

    def mark(self, ev: object, live: bool) -> None:
        """The training thread: ``ev`` is on its way to the app; ``live``: it happens now."""
        if self.enabled and live and isinstance(ev, MESSAGE_EVENTS):
            self._now.append(ev)

    def follow(self, ev: E.Event) -> None:
        """The app's thread: one event, in order; its notification when it was marked."""
        message = self.messages.follow(ev) if isinstance(ev, MESSAGE_EVENTS) else None
        if not self._now or self._now[0] is not ev:
            return
        self._now.popleft()
        write = self.writer() if message is not None else None
        if write is None:
            return
        data = payload(message, os.environ if self.env is None else self.env, self.outer, len(self.sent) + 1)
        if data:
            write(data)
            self.sent.append(message)
