"""Pilot: a run the engine refuses at start (a user model whose output does not fit the data,
issue 15) shows its one line without a crash, and the launcher shows it again on n."""

from __future__ import annotations

import textwrap

from tests.functional.helpers import run_async, settle, wait_for
from tui_train.core import config as cfgmod
from tui_train.core.train.engine import Trainer
from tui_train.tui.app import build_app
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.widgets.event_log import EventLog

NET = """
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 3)

    def forward(self, x):
        return self.fc(x.flatten(1)), x
"""


@run_async
async def test_a_model_refused_at_start_is_one_line_on_the_dashboard_and_in_the_launcher(tmp_path):
    (tmp_path / "net.py").write_text(textwrap.dedent(NET))
    cfg = cfgmod.from_dict({"name": "bad", "description": "a model of 3 outputs on 10 classes",
                            "data": {"dataset": "digits"}, "model": {"name": f"{tmp_path / 'net.py'}:Net"},
                            "train": {"device": "cpu", "num_threads": 1}})
    made = []

    def factory(config, preset):
        made.append(Trainer(config, runs_dir=tmp_path / "runs", preset=preset))
        return made[-1]

    app = build_app(config=cfg, preset="bad", runs_dir=tmp_path / "runs", trainer_factory=factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen), what="launcher")
        app.screen.action_start()
        await wait_for(pilot, lambda: app.status == "failed", timeout=60, what="the refusal")
        await settle(pilot)
        expected = "returned a float32 tensor of shape [64, 3] for a batch of shape [64, 1, 8, 8]; expected shape [64, 10]"
        log = "\n".join(app.dashboard.query_one(EventLog).lines_text)
        assert expected in log and "Traceback" not in log
        assert made and made[0].run_dir is None and not (tmp_path / "runs").exists()  # refused before a run directory
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen), what="back to the launcher")
        await settle(pilot)
        shown = str(app.screen.query_one("#launch-error").render())
        assert shown.startswith("not started: model.name ") and expected in shown.replace("\n", " ").replace("  ", " ")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
