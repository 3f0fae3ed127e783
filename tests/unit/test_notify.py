"""Notifications (issue 25 item 4): which events are worth one and in which words (core.run.notify.Messages),
the URLs (checked, never shown but for their scheme), the out-of-band Notifier (one background thread; a
failure is one warning per scheme; the run's end waits a bounded time; no apprise: one warning), and
``tui_train.init(notify=...)`` against a local HTTP endpoint through the real apprise."""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from tui_train.core import config as cfgmod
from tui_train.core import events as E
from tui_train.core.run import notify as N
from tui_train.core.run.runlog import RunLog


def started(name: str = "digits-mlp", task: str = "classification") -> E.RunStarted:
    return E.RunStarted(run_dir=f"/runs/20261203-101500-{name}", preset=name, device="cpu", task=task, epochs=3,
                        steps_per_epoch=10, total_steps=30, train_size=100, val_size=10, test_size=10, num_params=10,
                        model="MLP")


def finished(status: str = "completed", reason: str = "all epochs done", test: dict | None = None) -> E.RunFinished:
    summary = {"status": status, "reason": reason, "epochs_completed": 3, "steps": 30, "wall_seconds": 12.34,
               "test": test if test is not None else {"loss": 0.1, "accuracy": 0.9725}, "task": "classification"}
    return E.RunFinished(status=status, summary=summary, run_dir="/runs/20261203-101500-digits-mlp")


# ---------------------------------------------------------------------------------------- what is said

def test_the_moments_worth_a_notification_and_their_words():
    m = N.Messages()
    assert m.follow(finished()) is None  # nothing before RunStarted (a run refused at its start is said where it started)
    assert m.follow(started()) is None
    end = m.follow(finished())
    assert (end.kind, end.level, end.final) == ("end", "success", True)
    assert end.title == "tui-train: digits-mlp completed"
    assert end.body == "all epochs done · test accuracy 97.25% · 3 epochs, 30 steps, 12.3 s · 20261203-101500-digits-mlp"
    paused = m.follow(E.StatusChanged(status="paused", reason="non-finite loss nan at step 12", step=12, cause="nonfinite"))
    assert paused.kind == "paused" and paused.level == "warning" and not paused.final
    assert paused.title == "tui-train: digits-mlp paused: non-finite loss" and "nan at step 12" in paused.body
    hit = m.follow(E.StatusChanged(status="paused", reason="breakpoint 1: val_accuracy >= 0.9", step=20, cause="breakpoint"))
    assert hit.title == "tui-train: digits-mlp paused: breakpoint" and "val_accuracy >= 0.9" in hit.body
    target = m.follow(E.RunNote(message="target reached: val_accuracy 0.9917 >= 0.99 after 1.2 s of training", step=30))
    assert target.kind == "target" and target.title == "tui-train: digits-mlp reached its target"
    failed = m.follow(E.RunFailed(message="RuntimeError: boom", traceback="", traceback_path=""))
    assert (failed.kind, failed.level, failed.final, failed.title) == ("failed", "failure", True, "tui-train: digits-mlp failed")
    unsaved = m.follow(finished("unsaved", "all epochs done; not saved: last.pt (OSError: disk full)"))
    assert unsaved.level == "warning" and unsaved.title.endswith("ended, NOT SAVED")
    regression = N.Messages()
    regression.follow(started("regression-mlp", "regression"))
    assert "test r2 0.9712" in regression.follow(finished(test={"loss": 0.1, "r2": 0.97123, "mae": 0.2})).body


@pytest.mark.parametrize("ev", [
    E.StatusChanged(status="paused", reason="paused by tui-1", step=3, cause="command"),  # a person paused it: no news to them
    E.StatusChanged(status="running", reason="resumed", step=3, cause="command"),
    E.RunNote(message="threads: 2 (measured)", step=0),
    E.RunNote(message="output: target reached in my script's own words", step=0),  # a script's print is not the target
    E.RunWarning(message="target reached", step=0),
    E.StepMetrics(step=1, epoch=0, epoch_progress=0.1, loss=1.0, lr=1e-3, samples_per_second=1.0),
])
def test_everything_else_is_no_notification(ev):
    m = N.Messages()
    m.follow(started())
    assert m.follow(ev) is None


def test_text_from_the_run_is_one_literal_line():
    m = N.Messages()
    m.follow(started("evil\x1b]0;pwned\x07name"))
    msg = m.follow(E.RunFailed(message="ValueError: bad\nline two\x1b[2J\u202eevil", traceback="", traceback_path=""))
    for text in (msg.title, msg.body):
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or c == "\u202e" for c in text)
    assert "\\x1b]0;pwned\\x07" in msg.title and "bad line two\\x1b[2J\\u202eevil" in msg.body
    long = m.follow(E.RunFailed(message="x" * 5000, traceback="", traceback_path=""))
    assert len(long.body) <= N.Messages.BODY_CHARS


# ---------------------------------------------------------------------------------------- URLs

def test_urls_are_checked_without_being_shown():
    assert N.check_urls(["ntfy://topic", "json://127.0.0.1:8080/x?token=abc"], "--notify") == [
        "ntfy://topic", "json://127.0.0.1:8080/x?token=abc"]
    for bad in (["secret-token-without-scheme"], ["ntfy://ok", "https ://x"], [42], ["ntfy://a b"], ["ntfy://"]):
        with pytest.raises(ValueError) as e:
            N.check_urls(bad, "--notify")
        assert str(e.value).startswith("--notify: item ") and "secret" not in str(e.value) and "\n" not in str(e.value)
    assert N.scheme_of("Slack://TokenA/TokenB") == "slack://" and N.scheme_of("nonsense") == "?"
    assert N.shown(["ntfy://my-secret-topic", "json://h/p"]) == "ntfy://…, json://…"
    assert N.from_env({N.NOTIFY_ENV: " ntfy://a  json://b/c "}) == ["ntfy://a", "json://b/c"]
    assert N.merged(["a://1", "b://2"], ["a://1", "c://3"]) == ["a://1", "b://2", "c://3"]
    said = "A Connection error occurred sending JSON notification to 10.1.2.3 (path /hooks/s3cr3t-token)."
    assert N.redact(said, "json://user:pa55word@10.1.2.3:8080/hooks/s3cr3t-token?x=1") == \
        "A Connection error occurred sending JSON notification to … (path /…/…)."


def test_a_presets_notify_table_is_read_apart_from_its_config(tmp_path):
    preset = tmp_path / "mine.toml"
    preset.write_text('description = "mine"\n[data]\ndataset = "digits"\n[notify]\nurls = ["ntfy://topic", "json://h/p"]\n')
    assert cfgmod.looks_like_preset(preset)
    config = cfgmod.load_config(str(preset))  # the table is not the run's config: never in config.toml or a checkpoint
    assert "notify" not in cfgmod.to_dict(config) and "ntfy" not in cfgmod.to_toml(config)
    assert cfgmod.notify_urls(str(preset)) == ["ntfy://topic", "json://h/p"]
    assert cfgmod.notify_urls("digits-mlp") == []
    for table in ('urls = "ntfy://topic"', 'url = ["ntfy://topic"]', "urls = [1]"):
        preset.write_text(f'description = "mine"\n[notify]\n{table}\n')
        with pytest.raises(cfgmod.ConfigError) as e:
            cfgmod.notify_urls(str(preset))
        assert "[notify]" in str(e.value) or "notify.urls" in str(e.value)


# ---------------------------------------------------------------------------------------- the Notifier

class Log:
    """The run log's listener list, and what the place would record (events emitted, in order)."""

    def __init__(self):
        self.listeners: list = []
        self.events: list = []
        self.seq = 0

    def emit(self, ev: E.Event) -> None:
        self.seq += 1
        self.events.append(ev)
        for listener in tuple(self.listeners):
            listener(self.seq, ev)

    def warnings(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, E.RunWarning)]


def run_events(log: Log, *, pause: bool = True, end: E.Event | None = None) -> None:
    log.emit(started())
    log.emit(E.StatusChanged(status="running", reason="started", step=0, cause="start"))
    if pause:
        log.emit(E.StatusChanged(status="paused", reason="non-finite loss", step=5, cause="nonfinite"))
        log.emit(E.StatusChanged(status="running", reason="resumed", step=5, cause="command"))
    log.emit(E.StatusChanged(status="completed", reason="all epochs done", step=30, cause="end"))
    log.emit(end or finished())


def test_every_message_reaches_every_url_from_one_thread():
    got: list[tuple[str, str, str]] = []

    def connect(urls, say):
        return [(N.scheme_of(u), lambda m, u=u: (got.append((u, m.kind, threading.current_thread().name)) or True, ""))
                for u in urls]

    log = Log()
    notifier = N.attach(log, log.emit, ["ntfy://a", "json://h/p"], connect=connect)
    run_events(log)
    assert [(u, k) for u, k, _ in got] == [("ntfy://a", "paused"), ("json://h/p", "paused"), ("ntfy://a", "end"),
                                           ("json://h/p", "end")]  # the end waited for both
    assert {t for _, _, t in got} == {"tui-train-notify"}
    assert log.warnings() == [] and notifier.sent[-1] == ("json://", "end")
    N.detach(log, notifier)
    assert log.listeners == []
    assert N.attach(log, log.emit, []) is None  # no URLs, no thread


def test_a_failing_url_is_one_warning_per_scheme_and_the_run_goes_on():
    def connect(urls, say):
        def send(m, u):
            if "dead" in u:
                return False, "connection refused"
            raise RuntimeError("a plugin's own bug")
        return [(N.scheme_of(u), lambda m, u=u: send(m, u)) for u in urls]

    log = Log()
    N.attach(log, log.emit, ["json://dead-1/x", "json://dead-2/y", "mailto://bug"], connect=connect)
    run_events(log)
    warnings = log.warnings()
    assert len(warnings) == 2, warnings  # json:// once for two URLs and two messages; mailto:// once
    assert warnings[0] == ("notify: json://… did not take the 'paused' notification (connection refused); the run goes on, "
                           "and later failures of json://… are not reported")
    assert "mailto://… did not take the 'paused' notification (RuntimeError: a plugin's own bug)" in warnings[1]
    assert not any("dead-1" in w or "bug/" in w for w in warnings)


def test_the_end_waits_a_bounded_time_for_a_service_that_does_not_answer():
    release = threading.Event()

    def connect(urls, say):
        return [("json://", lambda m: (release.wait(30), (True, ""))[1])]

    log = Log()
    N.attach(log, log.emit, ["json://black-hole/x"], connect=connect, end_wait=0.2)
    run_events(log, pause=False)
    release.set()
    assert isinstance(log.events[-2], E.RunFinished)
    assert log.warnings() == ["notify: json://… did not take the run's last message within 0.2 s; giving up "
                              "(it may still arrive while the process exits)"]


def test_warnings_never_come_before_run_started():
    said = threading.Event()

    def connect(urls, say):
        say("notify: something to say at once")
        said.set()
        return []

    log = Log()
    N.attach(log, log.emit, ["json://h/p"], connect=connect)
    assert said.wait(10)
    log.emit(E.StatusChanged(status="starting", reason="", step=0, cause="start"))  # a record before RunStarted
    assert [type(e) for e in log.events] == [E.StatusChanged]  # held until the run has started
    run_events(log, pause=False)
    assert isinstance(log.events[1], E.RunStarted) and log.warnings() == ["notify: something to say at once"]


def test_a_full_queue_leaves_messages_out_and_says_so_once():
    release = threading.Event()

    def connect(urls, say):
        return [("json://", lambda m: (release.wait(30), (True, ""))[1])]

    log = Log()
    notifier = N.attach(log, log.emit, ["json://slow/x"], connect=connect, end_wait=0.1)
    log.emit(started())
    for i in range(N.QUEUE_SIZE + 5):
        log.emit(E.StatusChanged(status="paused", reason=f"nan {i}", step=i, cause="nonfinite"))
    release.set()
    notifier.close()
    dropped = [w for w in log.warnings() if "slower than the run makes them" in w]
    assert len(dropped) == 1 and "'paused' and later ones that do not fit are left out" in dropped[0]


def test_without_apprise_one_warning_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise raises ImportError
    said: list[str] = []
    assert N.connect_apprise(["ntfy://secret-topic", "json://h/p"], said.append) == []
    assert said == ["notify: apprise is not installed, so ntfy://…, json://… get no notification: "
                    "pip install 'tui-train[notify]'"]


# ---------------------------------------------------------------------------------------- real apprise, real HTTP

class Hook:
    """A local HTTP endpoint that records the JSON bodies posted to it (apprise's json://)."""

    def __init__(self):
        self.bodies: list[dict] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dead_url() -> str:
    """A json:// URL on a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"json://127.0.0.1:{port}/nobody"


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_init_notify_reaches_a_local_endpoint_and_a_dead_one_is_one_warning(tmp_path, monkeypatch):
    pytest.importorskip("apprise")
    import tui_train

    monkeypatch.delenv(N.NOTIFY_ENV, raising=False)
    hook = Hook()
    try:
        run = tui_train.init("mine", config={"epochs": 1}, runs_dir=tmp_path, endpoint=False, signals=False,
                             system_interval=0, notify=[hook.url, dead_url()])
        for i in range(5):
            run.log({"loss": 1.0 / (i + 1)})
        summary = run.finish()
    finally:
        hook.close()
    assert summary["status"] == "completed"
    assert [(b["title"], b["type"]) for b in hook.bodies] == [("tui-train: mine completed", "success")]
    assert "the loop finished · 5 steps" in hook.bodies[0]["message"]
    warnings = [e["message"] for e in events_of(run.run_dir) if e["event"] == "RunWarning"]
    assert len(warnings) == 1 and warnings[0].startswith("notify: json://… did not take the 'end' notification")
    assert "127.0.0.1" not in warnings[0]
    for name in ("events.jsonl", "summary.json", "config.toml"):  # the URL is never written down
        assert "/hook" not in (run.run_dir / name).read_text()


def test_init_notify_without_apprise_is_one_warning_and_the_run_goes_on(tmp_path, monkeypatch):
    import tui_train

    monkeypatch.setitem(sys.modules, "apprise", None)
    monkeypatch.delenv(N.NOTIFY_ENV, raising=False)
    run = tui_train.init("mine", runs_dir=tmp_path, endpoint=False, signals=False, system_interval=0,
                         notify="ntfy://my-secret-topic")
    run.log({"loss": 1.0})
    assert run.finish()["status"] == "completed"
    warnings = [e["message"] for e in events_of(run.run_dir) if e["event"] == "RunWarning"]
    assert warnings == ["notify: apprise is not installed, so ntfy://… get no notification: pip install 'tui-train[notify]'"]


def test_init_refuses_a_notify_that_is_not_urls(tmp_path):
    import tui_train

    for bad in (["my-secret-token"], 42):
        with pytest.raises(ValueError) as e:
            tui_train.init("mine", runs_dir=tmp_path, endpoint=False, signals=False, notify=bad)
        assert str(e.value).startswith("tui_train.init(notify=...): item 1 is not a URL") and "secret" not in str(e.value)
    assert not list(tmp_path.iterdir())  # refused before a run directory was made


def test_a_run_log_with_a_notifier_records_its_warnings_after_the_end(tmp_path):
    """The listener on the real RunLog, as the trainer process and tui_train.init attach it."""
    def connect(urls, say):
        return [("json://", lambda m: (False, "refused"))]

    log = RunLog(tmp_path)
    log.open("")
    notifier = N.attach(log, log.write, ["json://h/p"], connect=connect)
    log.write(started())
    log.write(finished())
    N.detach(log, notifier)
    log.close()
    kinds = [e["event"] for e in events_of(tmp_path)]
    assert kinds == ["RunStarted", "RunFinished", "RunWarning"]
