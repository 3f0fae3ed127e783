"""Desktop notifications through the dashboard's terminal (issue 25 item 4), byte for byte: which
sequence each terminal gets (OSC 9, OSC 777, OSC 99, the bell), wrapped for tmux (ESC doubled) and GNU
screen, text from the run made literal so it cannot end the sequence early, and the session's rule
that only what happens now is notified (an attached viewer's history is not). A real dashboard
writing them to a pty, alone and inside tmux: tests/e2e/test_notify_terminal_pty.py."""

from __future__ import annotations

import os
import pty
import re

import pytest

from tui_train.core import events as E
from tui_train.core.run.notify import Message
from tui_train.tui import notify_terminal as T
from tui_train.tui.session import RunSession

END = Message("end", "tui-train: digits-mlp completed", "all epochs done · test accuracy 97.25%", "success", True)

OSC9 = "\x1b]9;tui-train: digits-mlp completed: all epochs done · test accuracy 97.25%\x07"
OSC777 = "\x1b]777;notify;tui-train: digits-mlp completed;all epochs done · test accuracy 97.25%\x07"
OSC99 = ("\x1b]99;i=tui-train-1:d=0;tui-train: digits-mlp completed\x07"
         "\x1b]99;i=tui-train-1:d=1:p=body;all epochs done · test accuracy 97.25%\x07")


def no_tmux():
    raise AssertionError("tmux is asked only when TMUX is set")


@pytest.mark.parametrize(("env", "expected"), [
    ({"TERM": "xterm-256color"}, OSC9 + OSC777 + "\x07"),  # not recognised (over SSH only TERM arrives): both
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, OSC9 + "\x07"),
    ({"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2"}, OSC9 + "\x07"),  # iTerm2's variable SSH passes on
    ({"TERM": "xterm-ghostty"}, OSC9 + "\x07"),
    ({"TERM": "xterm-256color", "WT_SESSION": "abc"}, OSC9 + "\x07"),
    ({"TERM": "xterm-kitty"}, OSC99 + "\x07"),
    ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "3"}, OSC99 + "\x07"),
    ({"TERM": "foot"}, OSC777 + "\x07"),
    ({"TERM": "rxvt-unicode-256color"}, OSC777 + "\x07"),
    ({"TERM": "xterm-256color", "VTE_VERSION": "7600"}, OSC777 + "\x07"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, OSC777 + "\x07"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "Apple_Terminal"}, "\x07"),
    ({"TERM": "linux"}, "\x07"),  # the Linux console would print an OSC it does not know
    ({"TERM": "xterm-256color", T.TERMINAL_ENV: "0"}, ""),
    ({"TERM": "xterm-kitty", T.TERMINAL_ENV: "off"}, ""),
    ({"TERM": "xterm-kitty", T.TERMINAL_ENV: "osc9"}, OSC9),  # exactly what is named
    ({"TERM": "xterm-256color", T.TERMINAL_ENV: "osc777,bell"}, OSC777 + "\x07"),
    ({"TERM": "xterm-256color", T.TERMINAL_ENV: "bell"}, "\x07"),
    ({"TERM": "xterm-256color", T.TERMINAL_ENV: "auto"}, OSC9 + OSC777 + "\x07"),
    ({"TERM": "screen-256color"}, "\x1bP" + OSC9 + "\x1b\\" + "\x1bP" + OSC777 + "\x1b\\" + "\x07"),  # GNU screen
])
def test_each_terminal_gets_its_sequence(env, expected):
    assert T.payload(END, env, no_tmux) == expected


def test_inside_tmux_every_escape_is_doubled_in_its_passthrough():
    env = {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0", "TERM_PROGRAM": "tmux"}
    tmux = lambda seq: "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"  # noqa: E731
    assert T.payload(END, env, lambda: ("xterm-256color", "")) == tmux(OSC9) + tmux(OSC777) + "\x07"
    # the terminal attached to tmux now, as tmux reports it: not the environment tmux was started from
    assert T.payload(END, {**env, "KITTY_WINDOW_ID": "1"}, lambda: ("xterm-256color", "WezTerm 20240203")) == \
        tmux(OSC777) + "\x07"
    kitty = T.payload(END, env, lambda: ("xterm-kitty", "kitty(0.35.2)"))
    assert kitty == "".join(tmux(s) for s in re.findall(r"\x1b\]99;[^\x07]*\x07", OSC99)) + "\x07"
    # tmux unreachable: the environment decides; screen's TERM inside tmux is tmux's, never screen's wrapping
    assert T.payload(END, {**env, "TERM": "screen-256color"}, lambda: None) == tmux(OSC9) + tmux(OSC777) + "\x07"
    for wrapped in re.findall(r"\x1bPtmux;(.*?)\x1b\\", kitty, re.S):
        assert "\x1b" not in wrapped.replace("\x1b\x1b", "")


def test_text_from_the_run_cannot_end_the_sequence():
    evil = Message("failed", "tui-train: a;b\x07\x1b]0;owned\x1b\\ failed", "boom\x1b[2J\nnext\x9c\u202e\ttab" + "x" * 900,
                   "failure", True)
    text = r"[^\x00-\x1f\x7f-\x9f\u202e]*"  # an OSC's text: no control character, no bidi override
    for env, shape in (({"TERM": "xterm-256color"}, rf"(\x1b\]{text}\x07){{2}}\x07"),
                       ({"TERM": "xterm-kitty"}, rf"(\x1b\]{text}\x07){{2}}\x07"),
                       ({"TERM": "tmux", "TMUX": "x"}, rf"(\x1bPtmux;\x1b\x1b\]{text}\x07\x1b\\){{2}}\x07"),
                       ({"TERM": "screen"}, rf"(\x1bP\x1b\]{text}\x07\x1b\\){{2}}\x07")):
        data = T.payload(evil, env, lambda: None)
        assert re.fullmatch(shape, data), repr(data)  # exactly its two sequences and the bell: nothing ended early
        assert "\\x1b]0;owned" in data and "boom\\x1b[2J next\\x9c\\u202e tab" in data
    osc777 = T.sequences("osc777", evil.title, evil.body)[0]
    assert osc777.startswith("\x1b]777;notify;tui-train: a,b\\x07") and osc777.count(";") == 3  # ';' ends the title
    assert len(T.sequences("osc9", evil.title, evil.body)[0]) < 450  # GNU screen's passthrough takes ~500 bytes
    assert T.clean("a\r\nb\t c\x00") == "a b c\\x00"


def test_the_bytes_reach_a_pty_as_they_are():
    master, slave = pty.openpty()
    try:
        import tty

        tty.setraw(slave)
        data = T.payload(END, {"TERM": "tmux-256color", "TMUX": "x"}, lambda: ("xterm-kitty", "")).encode()
        os.write(slave, data)
        got = b""
        while len(got) < len(data):
            got += os.read(master, 65536)
        assert got == data and got.startswith(b"\x1bPtmux;\x1b\x1b]99;i=tui-train-1:d=0;")
    finally:
        os.close(master)
        os.close(slave)


def test_tmux_is_asked_for_its_client(monkeypatch):
    class Done:
        returncode, stdout = 0, "xterm-kitty\tkitty(0.35.2)\n"

    calls = []
    monkeypatch.setattr(T.subprocess, "run", lambda argv, **kw: calls.append(argv) or Done())
    assert T.tmux_client() == ("xterm-kitty", "kitty(0.35.2)")
    assert calls == [["tmux", "display-message", "-p", "#{client_termname}\t#{client_termtype}"]]

    def missing(argv, **kw):
        raise FileNotFoundError("tmux")

    monkeypatch.setattr(T.subprocess, "run", missing)
    assert T.tmux_client() is None


# ---------------------------------------------------------------------------------------- now, not the history

def started() -> E.RunStarted:
    return E.RunStarted(run_dir="/runs/20261203-digits-mlp", preset="digits-mlp", device="cpu", task="classification",
                        epochs=1, steps_per_epoch=1, total_steps=1, train_size=1, val_size=1, test_size=1, num_params=1,
                        model="MLP")


NONFINITE = E.StatusChanged(status="paused", reason="loss nan", step=3, cause="nonfinite")
RESUMED = E.StatusChanged(status="running", reason="resumed", step=3, cause="command")
DONE = E.RunFinished(status="completed", summary={"status": "completed", "reason": "all epochs done"}, run_dir="/runs/x")


class Attached:
    """What RemoteTrainer.run does for a viewer that attaches: the run's history (live False), then the live events."""

    detachable, viewers, detached, live = True, 1, False, False

    def __init__(self, history, now):
        self.history, self.now = history, now

    def submit(self, command, origin=""):
        pass

    def run(self, stop_event=None, sink=None):
        for ev in self.history:
            sink(ev)
        self.live = True
        for ev in self.now:
            sink(ev)
        return {}


def follow_all(session: RunSession) -> None:
    session.start()
    session.thread.join(10)
    for ev in session.drain():
        if isinstance(ev, E.Event):
            session.follow(ev)


def test_an_attached_dashboard_notifies_what_happens_now_not_the_history(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv(T.TERMINAL_ENV, raising=False)
    written: list[str] = []
    monkeypatch.setattr(T, "app_writer", lambda: written.append)
    # the history: a non-finite pause long answered, and the end of the run before it was resumed
    history = [started(), NONFINITE, RESUMED, DONE, started()]
    session = RunSession(lambda: Attached(history, [NONFINITE, DONE]))
    follow_all(session)
    assert [m.title for m in session.notices.sent] == ["tui-train: digits-mlp paused: non-finite loss",
                                                       "tui-train: digits-mlp completed"]
    assert len(written) == 2 and written[0].startswith("\x1b]9;tui-train: digits-mlp paused: non-finite loss: loss nan")

    replay = RunSession(lambda: Attached([], [started(), NONFINITE, DONE]), replay=True)  # a replay notifies nothing
    follow_all(replay)
    assert replay.notices.sent == [] and len(written) == 2

    monkeypatch.setenv(T.TERMINAL_ENV, "0")  # --no-notify-terminal
    off = RunSession(lambda: Attached([], [started(), DONE]))
    follow_all(off)
    assert off.notices.sent == [] and len(written) == 2


def test_no_terminal_to_write_to_is_no_notification(monkeypatch):
    monkeypatch.setattr(T, "app_writer", lambda: None)  # Pilot's headless driver, or the app has exited
    session = RunSession(lambda: Attached([], [started(), DONE]))
    follow_all(session)
    assert session.notices.sent == []
