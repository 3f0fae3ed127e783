"""Notifications of the moments a person waits for (issue 25 item 4): a run's end, its failure, its
target reached, and a pause that waits for a decision.

:class:`Messages` says which events are worth a notification and in which words, once for every
front end: the TUI's desktop notifications through its terminal (:mod:`tui_train.tui.notify_terminal`)
and the out-of-band ones here. The events, all of them the run layer's (any loop's):

- RunFinished (completed, early stopped, stopped, unsaved, interrupted) and RunFailed;
- the RunNote that starts with ``target reached`` (``train.target``);
- StatusChanged ``paused`` with cause ``nonfinite`` (a non-finite loss waits for roll back, resume
  or stop) or ``breakpoint`` (a breakpoint was hit).

Out of band, :class:`Notifier` is a listener of the run log (:attr:`RunLog.listeners
<tui_train.core.run.runlog.RunLog.listeners>`), so it sees what every viewer sees, in the trainer's
process (the built-in loop's, or a user's loop through ``tui_train.init(notify=...)``). It hands
each message to one background thread that sends it through apprise (``pip install
'tui-train[notify]'``) to every URL (``ntfy://topic``, ``slack://...``, ``json://host/path``...),
so a slow or dead service never slows training. At the run's end it waits for the last message at
most :data:`END_WAIT` seconds, then gives up and says so. A failed notification never fails the
run: it is one RunWarning per URL scheme (not one per message), recorded in events.jsonl and shown
by every viewer; without apprise, one RunWarning says how to install it. A URL may hold a token:
only its scheme is ever shown (``ntfy://…``), and it is never written to the run directory.

Where the URLs come from: :data:`NOTIFY_ENV` (what ``tui-train run --notify`` and a preset's
``[notify]`` table put there, inherited by the trainer process and torchrun's workers), and
``tui_train.init(notify=...)``. No torch, no UI; apprise is imported in the background thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_train.core import events as E
from tui_train.core.errors import first_line
from tui_train.core.headline import headline_value
from tui_train.core.text import printable

NOTIFY_ENV = "TUI_TRAIN_NOTIFY"
"""URLs (separated by spaces) that every run started in this environment notifies; ``tui-train run``
adds ``--notify`` and the preset's ``[notify] urls`` to it for the processes it starts."""

END_WAIT = 5.0
"""Seconds the run's end waits for its last notification before giving up (the run has ended by
then: only the process's exit waits)."""

QUEUE_SIZE = 32
"""Messages waiting for a slow service at most; one more is left out, and a warning says so."""

TARGET_NOTE = "target reached"
"""How the RunNote of a reached ``train.target`` starts (core.train.target_watch)."""

PAUSE_CAUSES = {"nonfinite": "non-finite loss", "breakpoint": "breakpoint"}
"""StatusChanged causes of a pause that waits for a person, and how a notification names them."""

ENDINGS = {"completed": "completed", "early_stopped": "early stopped", "stopped": "stopped",
           "unsaved": "ended, NOT SAVED", "interrupted": "interrupted", "preempted": "preempted"}
"""How a notification's title says each final status of RunFinished."""

MESSAGE_EVENTS = (E.RunStarted, E.StatusChanged, E.RunNote, E.RunFinished, E.RunFailed)
"""The event types :class:`Messages` reads (a cheap filter for a front end's hot path)."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://\S")


@dataclass(frozen=True)
class Message:
    """One notification, in plain text (control characters already made visible)."""

    kind: str
    """'end', 'failed', 'target' or 'paused'."""
    title: str
    """One line: ``tui-train: <run> completed``."""
    body: str
    """One line: why, the headline test metric, how long, the run directory's name."""
    level: str
    """'success', 'warning', 'failure' or 'info' (apprise's notification types)."""
    final: bool = False
    """The run's last message (its end or failure)."""


# ---------------------------------------------------------------------------------------- URLs

def scheme_of(url: str) -> str:
    """``url``'s scheme as shown everywhere (``ntfy://``): the rest may hold a token."""
    m = _SCHEME.match(url)
    return f"{m.group(1).lower()}://" if m else "?"


def shown(urls: Iterable[str]) -> str:
    """The URLs as they may be shown: their schemes (``ntfy://…, json://…``)."""
    return ", ".join(f"{scheme_of(u)}…" for u in urls)


def check_urls(urls: Iterable[Any], where: str) -> list[str]:
    """``urls`` as a list of strings that look like URLs (``scheme://...``), or ValueError with one
    line naming ``where`` and the item's position (never its text: it may hold a secret)."""
    out = []
    for i, url in enumerate(urls, 1):
        if not isinstance(url, str) or not _SCHEME.match(url) or any(c.isspace() for c in url):
            raise ValueError(f"{where}: item {i} is not a URL such as ntfy://topic or json://host/path "
                             "(scheme://...; the text is not shown: it may hold a token)")
        out.append(url)
    return out


def from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The URLs of :data:`NOTIFY_ENV` (split at spaces), unchecked."""
    return (os.environ if env is None else env).get(NOTIFY_ENV, "").split()


def merged(*groups: Iterable[str]) -> list[str]:
    """Every URL of ``groups`` once, in order."""
    return list(dict.fromkeys(u for group in groups for u in group))


# ---------------------------------------------------------------------------------------- what to say

def _clean(text: object, limit: int) -> str:
    """One line of outside text made literal: whitespace runs are one space, control characters
    visible escapes (core.text.printable), at most ``limit`` characters."""
    line = printable(" ".join(str(text).split()))
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _seconds(s: object) -> str:
    if not isinstance(s, int | float):
        return ""
    s = float(s)
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


class Messages:
    """Which events are worth a notification, and its words (see the module docstring). Follow
    every event of one run, in order: :meth:`follow` returns the :class:`Message` for the ones that
    are, None for the others. Nothing before the run's RunStarted is (a run refused at its start is
    said where it was started)."""

    TITLE_CHARS = 100
    """A title's length at most."""
    BODY_CHARS = 300
    """A body's length at most (GNU screen's passthrough takes about 500 bytes in all)."""

    def __init__(self) -> None:
        self.name = ""
        """The run's name (RunStarted's preset: a preset, or tui_train.init's name)."""
        self.task = ""
        """Its task (the headline test metric)."""
        self.folder = ""
        """The run directory's name."""
        # opt in, unlike a front end's table: an event type added later is no notification until
        # someone decides it is one here (and the table does not break the run's notifications meanwhile)
        self._say = E.exhaustive({**dict.fromkeys(E.EVENT_TYPES, E.ignore),
                                  E.RunStarted: self._started, E.StatusChanged: self._status, E.RunNote: self._note,
                                  E.RunFinished: self._finished, E.RunFailed: self._failed}, "Messages")

    def follow(self, ev: E.Event) -> Message | None:
        """The notification ``ev`` is worth, or None."""
        message = self._say[type(ev)](ev)
        return message if self.name else None

    def _message(self, kind: str, what: str, body: Iterable[str], level: str, final: bool = False) -> Message:
        title = _clean(f"tui-train: {self.name} {what}", self.TITLE_CHARS)
        return Message(kind, title, _clean(" · ".join(p for p in body if p), self.BODY_CHARS), level, final)

    def _started(self, ev: E.RunStarted) -> None:
        self.name, self.task, self.folder = ev.preset or "run", ev.task, Path(ev.run_dir).name

    def _status(self, ev: E.StatusChanged) -> Message | None:
        if ev.status != "paused" or ev.cause not in PAUSE_CAUSES:
            return None
        return self._message("paused", f"paused: {PAUSE_CAUSES[ev.cause]}",
                             [ev.reason, f"step {ev.step}", "waiting for you (tui-train attach)", self.folder], "warning")

    def _note(self, ev: E.RunNote) -> Message | None:
        if not ev.message.startswith(TARGET_NOTE):
            return None
        return self._message("target", "reached its target", [ev.message, self.folder], "success")

    def _finished(self, ev: E.RunFinished) -> Message:
        s = ev.summary if isinstance(ev.summary, dict) else {}
        test = s.get("test") if isinstance(s.get("test"), dict) else {}
        key, value = headline_value(self.task or s.get("task"), test or {})
        score = "" if value is None else f"test {key} {100 * value:.2f}%" if key == "accuracy" else f"test {key} {value:.4g}"
        epochs = s.get("epochs_completed")
        steps = s.get("steps")
        took = ", ".join(p for p in (_count(epochs, "epoch") if isinstance(epochs, int) and epochs > 0 else "",
                                     _count(steps, "step") if isinstance(steps, int) else "",
                                     _seconds(s.get("wall_seconds"))) if p)
        level = "success" if ev.status in ("completed", "early_stopped", "stopped") else "warning"
        return self._message("end", ENDINGS.get(ev.status, ev.status), [str(s.get("reason") or ""), score, took, self.folder],
                             level, final=True)

    def _failed(self, ev: E.RunFailed) -> Message:
        return self._message("failed", "failed", [ev.message, self.folder], "failure", final=True)


# ---------------------------------------------------------------------------------------- sending

Send = Callable[[Message], "tuple[bool, str]"]
"""Sends one message to one URL: (delivered, why not: one line without the URL's secrets)."""

Connect = Callable[[list[str], Callable[[str], None]], "list[tuple[str, Send]]"]
"""(urls, say) -> (scheme, send) for each URL that can be used; says (one line) why others cannot."""


def redact(text: str, url: str) -> str:
    """``text`` (a library's message about ``url``) without any part of the URL but its scheme."""
    rest = url.split("://", 1)[-1]
    for part in sorted({p for p in re.split(r"[/:@?&=#,;+]+", rest) if len(p) >= 3}, key=len, reverse=True):
        text = text.replace(part, "…")
    return text


class _Records(logging.Handler):
    """apprise's log records while one URL is sent to (apprise says why only in its log; it may
    send from threads of its own, so the records are not told apart by thread)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a record that cannot be formatted is no reason
            self.lines.append(record.getMessage())


def connect_apprise(urls: list[str], say: Callable[[str], None]) -> list[tuple[str, Send]]:
    """One apprise object per URL (a failure is then that URL's), imported here: in the sender's
    thread, so that starting a run never waits for it (apprise takes ~0.4 s to import)."""
    try:
        import apprise
    except ImportError:
        say(f"notify: apprise is not installed, so {shown(urls)} get no notification: pip install 'tui-train[notify]'")
        return []
    log = logging.getLogger("apprise")
    out: list[tuple[str, Send]] = []
    for url in urls:
        target = apprise.Apprise()
        try:
            usable = bool(_SCHEME.match(url)) and target.add(url)
        except Exception:  # noqa: BLE001 - a URL apprise chokes on is one it cannot use, said below
            usable = False
        if not usable:
            say(f"notify: {scheme_of(url)}… is not a URL apprise can use (https://github.com/caronc/apprise/wiki); left out")
            continue

        def send(message: Message, target=target, url=url) -> tuple[bool, str]:
            records = _Records()
            log.addHandler(records)
            try:
                ok = bool(target.notify(body=message.body or message.title, title=message.title, notify_type=message.level))
            except Exception as e:  # noqa: BLE001 - a plugin's failure is that URL's, never the run's
                ok, records.lines = False, [first_line(e, 200, typed=True)]
            finally:
                log.removeHandler(records)
            return ok, redact(records.lines[-1], url)[:200] if records.lines and not ok else ""

        out.append((scheme_of(url), send))
    return out


class Notifier:
    """Sends a run's messages to its URLs, from one background thread (see the module docstring).
    Append it to the run log's listeners (:func:`attach`): it is called with (seq, event) after
    each record, in the emitting thread, and never blocks there but at the run's end (at most
    ``end_wait`` seconds, for the last message). What it has to say (a URL apprise cannot use, a
    failed delivery, no apprise) becomes RunWarning events through ``emit`` (the place's), said
    from the emitting thread at the next record after RunStarted: the sender's thread never
    waits for the place's lock, which the run's end holds while it waits for the sender."""

    def __init__(self, urls: list[str], emit: Callable[[E.Event], None], *, end_wait: float = END_WAIT,
                 connect: Connect = connect_apprise) -> None:
        self.urls = list(urls)
        """Where messages go."""
        self.emit = emit
        """Records a RunWarning (RunPlace.emit: thread-safe, re-entrant)."""
        self.end_wait = end_wait
        """Seconds the run's end waits for its last message."""
        self.messages = Messages()
        """Which events are worth a message."""
        self.sent: list[tuple[str, str]] = []
        """(scheme, message kind) delivered so far."""
        self._connect = connect
        self._queue: queue.Queue[Message | None] = queue.Queue(QUEUE_SIZE)
        self._done = threading.Condition()
        self._pending = 0  # messages queued and not yet sent everywhere
        self._said: list[str] = []  # warnings for the next record after RunStarted
        self._warned: set[str] = set()  # schemes whose failure was said
        self._dropped = 0
        self._started = False
        self._step = 0
        self._thread = threading.Thread(target=self._work, name="tui-train-notify", daemon=True)
        self._thread.start()

    def __call__(self, seq: int, ev: E.Event) -> None:
        """The run log's listener: queue ``ev``'s message, if any; at the run's end wait for it."""
        step = getattr(ev, "step", None)
        if isinstance(step, int):
            self._step = step
        if isinstance(ev, E.RunStarted):
            self._started = True
        message = self.messages.follow(ev) if isinstance(ev, MESSAGE_EVENTS) else None
        if message is not None:
            self._put(message)
            if message.final:
                self._wait()
        self._flush()

    def close(self) -> None:
        """No more messages: the thread ends once it has sent what is queued (never waited for)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    # -- the emitting thread ------------------------------------------------------------------------
    def _put(self, message: Message) -> None:
        with self._done:
            try:
                self._queue.put_nowait(message)
            except queue.Full:
                self._dropped += 1
                if self._dropped == 1:
                    self._say(f"notify: {shown(self.urls)} take messages slower than the run makes them: "
                              f"'{message.kind}' and later ones that do not fit are left out")
                return
            self._pending += 1

    def _wait(self) -> None:
        with self._done:
            sent = self._done.wait_for(lambda: self._pending == 0, timeout=self.end_wait)
        if not sent:
            self._say(f"notify: {shown(self.urls)} did not take the run's last message within {self.end_wait:g} s; "
                      "giving up (it may still arrive while the process exits)")

    def _flush(self) -> None:
        if not self._started or not self._said:
            return
        with self._done:
            said, self._said = self._said, []
        for line in said:  # re-enters this listener: the list is empty by then
            self.emit(E.RunWarning(message=line, step=self._step))

    def _say(self, line: str) -> None:
        with self._done:
            self._said.append(line)

    # -- the sender's thread ------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            targets = self._connect(self.urls, self._say)
        except Exception as e:  # noqa: BLE001 - notifications are never the run's failure
            self._say(f"notify: cannot send notifications ({first_line(e, 200, typed=True)})")
            targets = []
        while True:
            message = self._queue.get()
            if message is None:
                return
            try:
                for scheme, send in targets:
                    self._send(scheme, send, message)
            finally:
                with self._done:
                    self._pending -= 1
                    self._done.notify_all()

    def _send(self, scheme: str, send: Send, message: Message) -> None:
        try:
            ok, why = send(message)
        except Exception as e:  # noqa: BLE001 - a sender's bug is a failed delivery, said once
            ok, why = False, first_line(e, 200, typed=True)
        if ok:
            self.sent.append((scheme, message.kind))
            return
        if scheme not in self._warned:
            self._warned.add(scheme)
            self._say(f"notify: {scheme}… did not take the '{message.kind}' notification" + (f" ({why})" if why else "")
                      + f"; the run goes on, and later failures of {scheme}… are not reported")


def attach(log: Any, emit: Callable[[E.Event], None], urls: Iterable[str], **options: Any) -> Notifier | None:
    """A :class:`Notifier` for ``urls`` listening to the run log ``log`` (None when there are no URLs)."""
    urls = list(urls)
    if not urls or log is None:
        return None
    notifier = Notifier(urls, emit, **options)
    log.listeners.append(notifier)
    return notifier


def detach(log: Any, notifier: Notifier | None) -> None:
    """Stop listening; the notifier's thread ends once it has sent what is queued."""
    if notifier is None:
        return
    with contextlib.suppress(ValueError, AttributeError):
        log.listeners.remove(notifier)
    notifier.close()


@contextlib.contextmanager
def notifying(log: Any, emit: Callable[[E.Event], None], urls: Iterable[str] | None = None) -> Iterator[Notifier | None]:
    """The run's notifications while the block runs (``urls``: by default :data:`NOTIFY_ENV`'s)."""
    notifier = attach(log, emit, from_env() if urls is None else urls)
    try:
        yield notifier
    finally:
        detach(log, notifier)
