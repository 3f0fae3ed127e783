"""A finished run replayed from its files (core.rundir.replay.ReplayTrainer): every recorded event once, in
order; commands rejected; a run without its ending shown as its files end, no status made up."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.run.runlog import RunLog
from tui_train.core.rundir.history import read_history
from tui_train.core.rundir.replay import NO_SUMMARY, REJECTED, ReplayTrainer

REPO = Path(__file__).resolve().parents[2]


def write_run(run_dir: Path, *, epochs: int = 3, steps_per_epoch: int = 10, finish: str | None = "completed",
              summary: bool = True, torn: bool = False) -> dict:
    """A run directory as the engine writes it; ``finish`` None: killed mid-run (no ending, no summary)."""
    run_dir.mkdir(parents=True)
    log = RunLog(run_dir)
    log.open('name = "tiny"\n')
    log.write(E.RunStarted(run_dir=str(run_dir), preset="tiny", device="cpu", task="classification", epochs=epochs,
                           steps_per_epoch=steps_per_epoch, total_steps=epochs * steps_per_epoch, train_size=160,
                           val_size=20, test_size=20, num_params=10, model="mlp", hyperparameters={"lr": 1e-3}, live=("lr",)))
    log.write(E.StatusChanged(status="running", reason="started", cause="start"))
    step = 0
    for epoch in range(epochs):
        for i in range(1, steps_per_epoch + 1):
            step += 1
            log.write(E.StepMetrics(step=step, epoch=epoch, epoch_progress=i / steps_per_epoch, loss=1.0 / step, lr=1e-3,
                                    samples_per_second=100.0, accuracy=0.5 + step / 100, elapsed=step * 0.1))
        if epoch == 0:
            log.write(E.CommandApplied(command="SetLearningRate", detail="lr 0.001 -> 0.0005", step=step, key="lr",
                                       old=1e-3, new=5e-4, origin="tui-1"))
        log.write(E.EpochMetrics(epoch=epoch, step=step, train={"loss": 1.0 / step, "accuracy": 0.8},
                                 val={"loss": 1.2 / step, "accuracy": 0.75}, lr=5e-4, seconds=1.0, is_best=True))
    content = {"status": finish, "reason": "all epochs done", "preset": "tiny", "steps": step, "epochs_completed": epochs,
               "run_dir": str(run_dir.resolve())}
    if finish is not None:
        log.write(E.TestMetrics(metrics={"loss": 0.3, "accuracy": 0.9}))
        log.write(E.StatusChanged(status=finish, reason="all epochs done", step=step, cause="end"))
        log.write(E.RunFinished(status=finish, summary=content, run_dir=str(run_dir.resolve())))
    log.close()
    if summary and finish is not None:
        log.write_summary(content)
    if torn:
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write('{"event": "StepMetrics", "step": 9')
    return content


def replay(run_dir: Path, **kwargs) -> tuple[ReplayTrainer, list[E.Event], dict]:
    trainer = ReplayTrainer(run_dir, **kwargs)
    got: list[E.Event] = []
    summary = trainer.run(sink=got.append)
    return trainer, got, summary


def test_every_recorded_event_once_in_order_and_the_summary_returned(tmp_path):
    content = write_run(tmp_path / "run")
    trainer, got, summary = replay(tmp_path / "run")
    assert summary == content and trainer.finished.is_set() and trainer.ended
    assert isinstance(got[0], E.RunNote) and "nothing to steer" in got[0].message
    assert got[1:] == read_history(tmp_path / "run")  # exactly the history, nothing added at the end
    kinds = [e.kind for e in got[1:]]
    assert kinds[:2] == ["RunStarted", "StatusChanged"] and kinds[-3:] == ["TestMetrics", "StatusChanged", "RunFinished"]
    assert kinds.count("StepMetrics") == 30 and kinds.count("EpochMetrics") == 3 and kinds.count("CommandApplied") == 1
    assert trainer.status == "completed" and trainer.step == 30
    assert ReplayTrainer.detachable is False


def test_step_metrics_are_thinned_like_an_attached_viewers_history(tmp_path):
    write_run(tmp_path / "run", epochs=2, steps_per_epoch=3000)
    _, got, _ = replay(tmp_path / "run", step_limit=300)
    steps = [e.step for e in got if isinstance(e, E.StepMetrics)]
    assert 90 <= len(steps) <= 330 and steps[-1] == 6000 and steps == sorted(steps)
    assert sum(isinstance(e, E.EpochMetrics) for e in got) == 2 and isinstance(got[-1], E.RunFinished)


def test_every_command_is_rejected_before_and_during_the_replay(tmp_path):
    write_run(tmp_path / "run")
    trainer = ReplayTrainer(tmp_path / "run")
    trainer.submit(C.Pause(), origin="tui-1")  # before run(): answered once it has a sink
    got: list[E.Event] = []

    def sink(ev: E.Event) -> None:
        got.append(ev)
        if isinstance(ev, E.EpochMetrics) and ev.epoch == 0:
            trainer.submit(C.SetLearningRate(0.1))  # while the history is sent (same thread here)

    trainer.run(sink=sink)
    rejected = [e for e in got if isinstance(e, E.CommandRejected)]
    assert [(e.command, e.reason, e.origin) for e in rejected] == [("Pause", REJECTED, "tui-1"), ("SetLearningRate", REJECTED, "")]
    assert rejected[1].step == 10  # the step replayed so far
    assert trainer.commands == [C.Pause(), C.SetLearningRate(0.1)]
    assert not any(isinstance(e, E.CommandApplied) and e.command != "SetLearningRate" for e in got)
    assert sum(isinstance(e, E.CommandApplied) for e in got) == 1  # only the recorded one: nothing was applied
    trainer.submit(C.Validate())  # after the end too: rejected, never queued for nobody
    assert isinstance(got[-1], E.CommandRejected) and got[-1].command == "Validate"


def test_a_killed_run_keeps_its_last_status_and_says_it_has_no_summary(tmp_path):
    write_run(tmp_path / "run", finish=None, torn=True)
    trainer, got, summary = replay(tmp_path / "run")
    assert summary == {} and not trainer.ended
    assert got[1:-1] == read_history(tmp_path / "run")  # the torn last line is skipped
    warning = got[-1]
    assert isinstance(warning, E.RunWarning) and warning.message.startswith(NO_SUMMARY)
    assert "step 30" in warning.message and "last status running" in warning.message and warning.step == 30
    statuses = [e.status for e in got if isinstance(e, E.StatusChanged)]
    assert statuses == ["running"]  # nothing final made up
    assert not any(isinstance(e, E.RunFinished | E.RunFailed) for e in got)
    assert trainer.status == "running"


def test_a_summary_without_the_last_events_ends_with_the_summarys_status(tmp_path):
    run_dir = tmp_path / "run"
    write_run(run_dir, finish=None)
    (run_dir / "summary.json").write_text(json.dumps({"status": "interrupted", "reason": "watchdog", "preset": "tiny"}))
    _, got, summary = replay(run_dir)
    assert summary["status"] == "interrupted"
    assert [e.kind for e in got[-3:]] == ["RunNote", "StatusChanged", "RunFinished"]
    assert got[-2].status == "interrupted" and got[-2].cause == "end" and got[-1].status == "interrupted"
    failed = tmp_path / "failed"
    write_run(failed, finish=None)
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "reason": "RuntimeError: boom"}))
    (failed / "traceback.txt").write_text("Traceback...\nRuntimeError: boom\n")
    _, got, _ = replay(failed)
    assert isinstance(got[-1], E.RunFailed) and got[-1].message == "RuntimeError: boom"
    assert got[-1].traceback_path.endswith("traceback.txt") and "boom" in got[-1].traceback
    assert got[-2].status == "failed" and got[-2].cause == "failure"


def test_an_empty_or_missing_run_directory_ends_without_raising(tmp_path):
    (tmp_path / "empty").mkdir()
    trainer, got, summary = replay(tmp_path / "empty")
    assert summary == {} and trainer.finished.is_set()
    assert [e.kind for e in got] == ["RunNote", "RunWarning"] and got[-1].message.startswith(NO_SUMMARY)
    _, got, _ = replay(tmp_path / "nope")
    assert got[-1].kind == "RunWarning"


def test_the_stop_event_ends_the_replay_early(tmp_path):
    write_run(tmp_path / "run", epochs=2, steps_per_epoch=2000)
    stop = threading.Event()
    got: list[E.Event] = []

    def sink(ev: E.Event) -> None:
        got.append(ev)
        stop.set()

    summary = ReplayTrainer(tmp_path / "run").run(stop_event=stop, sink=sink)
    assert summary["status"] == "completed"
    assert len(got) < 1000 and not any(isinstance(e, E.RunFinished) for e in got)


def test_replaying_imports_no_torch(tmp_path):
    write_run(tmp_path / "run")
    code = ("import sys\nfrom core.rundir.replay import ReplayTrainer\n"
            f"ReplayTrainer({str(tmp_path / 'run')!r}).run()\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
