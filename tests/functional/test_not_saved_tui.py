"""The dashboard of a run whose final checkpoint could not be written (a full disk) says so: the
badge reads NOT SAVED (not FINISHED), a notification that stays names the file and the reason, and
the app's exit code is EXIT_CODES['unsaved'] (STYLE.md habit 24, issue 20 defect 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tui_train.core import events as E
from tui_train.core.config import load_config
from tui_train.core.run.headless import EXIT_CODES
from tui_train.core.train import checkpoint as ckpt
from tui_train.tui.app import build_app, closing_words
from tui_train.tui.widgets.status_badge import StatusBadge

engine = pytest.importorskip("tui_train.core.train.engine")


@pytest.fixture(autouse=True)
def quick_idle(monkeypatch):
    """Pilot waits for the process to go idle after each key, which never happens while the
    training thread computes (as in test_dashboard_engine.py)."""
    import asyncio

    async def quick(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr("textual.app.wait_for_idle", quick)
    monkeypatch.setattr("textual.pilot.wait_for_idle", quick)


@run_async
async def test_a_lost_final_checkpoint_shows_not_saved_on_the_dashboard(tmp_path, monkeypatch):
    real = torch.save

    def full_disk(obj, f, *a, **k):
        if Path(f.name).name.startswith(f"{ckpt.TMP_PREFIX}last.pt."):
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    cfg = load_config("digits-mlp", overrides=["train.epochs=1", "train.max_steps=4", "train.log_every=2",
                                               "train.device=cpu", "train.num_threads=1"])
    finished: list[E.RunFinished] = []

    def factory(config, preset):
        trainer = engine.Trainer(config, runs_dir=tmp_path, preset=preset)
        run = trainer.run

        def run_and_keep(stop_event=None, sink=None):
            def tee(ev):
                if isinstance(ev, E.RunFinished):
                    finished.append(ev)
                sink(ev)
            return run(stop_event=stop_event, sink=tee)

        trainer.run = run_and_keep
        return trainer

    app = build_app(config=cfg, preset="digits-mlp", runs_dir=tmp_path, trainer_factory=factory, start_immediately=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status in E.FINAL_STATUSES, timeout=60, what="the end")
        await settle(pilot)
        assert app.status == "unsaved", app.status
        assert str(app.screen.query_one(StatusBadge).render()).strip() == "NOT SAVED"
        notes = [n.message for n in app._notifications]
        assert any("not saved: last.pt" in m and "No space left on device" in m for m in notes), notes
        assert "not saved: last.pt" in screen_text(app)
        assert finished and finished[0].summary["not_saved"][0]["file"] == "last.pt"
    assert app.exit_code() == EXIT_CODES["unsaved"] == 3
    line, code = closing_words(app)
    assert code == 3 and "unsaved" in line
