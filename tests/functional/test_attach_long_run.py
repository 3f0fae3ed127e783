"""Attach to a live run with a million logged steps (issue 21, item 4): the dashboard shows its
status, its step count, its epochs and its curves from the run directory, then the live steps
after them. How long it takes is bench (j)'s figure, not asserted here.

The run directory is built the way the trainer writes it (core.run.runlog.RunLog), except that the
million StepMetrics go straight into steps.f64 (its fixed float64 records, as RunLog packs them)
instead of a million JSON lines: the viewer reads steps from steps.f64 and everything else from
epochs.jsonl, so the test builds in a second what the trainer would take minutes to write.
"""

from __future__ import annotations

import numpy as np

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tui_train.core import events as E
from tui_train.core.run.endpoint import Endpoint
from tui_train.core.run.runlog import STEP_FIELDS, STEPS_NAME, RunLog
from tui_train.tui.app import build_app

N = 1_000_000
PER_EPOCH = 1000


def long_run(run_dir) -> tuple[RunLog, int]:
    log = RunLog(run_dir)
    log.open("")
    log.write(E.RunStarted(run_dir=str(run_dir), preset="long", device="cpu", task="classification", epochs=N // PER_EPOCH + 10,
                           steps_per_epoch=PER_EPOCH, total_steps=N + 10 * PER_EPOCH, train_size=64_000, val_size=6000,
                           test_size=10000, num_params=101_770, model="mlp 784-128-10",
                           hyperparameters={"lr": 1e-3, "optimizer": "sgd"},
                           live=("lr", "momentum", "weight_decay", "grad_clip", "patience")))
    log.write(E.StatusChanged(status="running", reason="started", cause="start"))
    records = np.empty((N, len(STEP_FIELDS)), dtype="<f8")
    step = np.arange(1, N + 1, dtype=np.float64)
    seq = log.seq
    # seqs as RunLog gives them: one per step, and one per epoch line after each 1000th step
    seqs = seq + step + (step - 1) // PER_EPOCH
    records[:, STEP_FIELDS.index("seq")] = seqs
    records[:, STEP_FIELDS.index("step")] = step
    records[:, STEP_FIELDS.index("epoch")] = (step - 1) // PER_EPOCH
    records[:, STEP_FIELDS.index("epoch_progress")] = ((step - 1) % PER_EPOCH + 1) / PER_EPOCH
    records[:, STEP_FIELDS.index("loss")] = 2.3 / (1 + step / 500)
    records[:, STEP_FIELDS.index("lr")] = 1e-3
    records[:, STEP_FIELDS.index("accuracy")] = np.minimum(0.99, step / N)
    records[:, STEP_FIELDS.index("samples_per_second")] = 64_000.0
    records[:, STEP_FIELDS.index("elapsed")] = step * 1e-3
    with open(run_dir / STEPS_NAME, "ab") as f:
        f.write(records.tobytes())
    for epoch in range(N // PER_EPOCH):
        log.seq = int(seqs[(epoch + 1) * PER_EPOCH - 1])  # the epoch line follows its last step
        log.write(E.EpochMetrics(epoch=epoch, step=(epoch + 1) * PER_EPOCH, train={"loss": 0.1, "accuracy": 0.97},
                                 val={"loss": 0.12, "accuracy": 0.96}, lr=1e-3, seconds=1.0))
    return log, int(seqs[-1]) + 1


@run_async
async def test_attach_to_a_live_run_with_a_million_logged_steps(tmp_path):
    run_dir = tmp_path / "runs" / "20260101-000000-long"
    run_dir.mkdir(parents=True)
    log, last_seq = long_run(run_dir)
    assert log.seq == last_seq
    endpoint = Endpoint(run_dir, lambda command, origin: None, status=lambda: "running", initial_seq=log.seq)
    endpoint.start()
    try:
        app = build_app(runs_dir=tmp_path / "runs", attach=run_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: f"step {N:,}/" in screen_text(app) or f"step {N}/" in screen_text(app),
                           timeout=60, what="the history's last step in the header")
            await settle(pilot)
            text = screen_text(app)
            assert "RUNNING" in text and "epochs" in text and f"{N // PER_EPOCH}" in text, text
            # a live step after the history arrives and moves the header on
            endpoint.publish(log.seq + 1, E.StepMetrics(step=N + 1, epoch=N // PER_EPOCH, epoch_progress=0.001, loss=0.01, lr=1e-3,
                                                        samples_per_second=64_000.0, accuracy=0.99, elapsed=N * 1e-3 + 1e-3))
            await wait_for(pilot, lambda: f"step {N + 1:,}/" in screen_text(app) or f"step {N + 1}/" in screen_text(app),
                           timeout=30, what="the live step after the history")
            await pilot.press("d")
    finally:
        endpoint.close()
        log.close()
