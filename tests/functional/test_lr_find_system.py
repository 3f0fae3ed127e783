"""Pilot tests of the LR range test's screen (L on a paused dashboard, L in the launcher) and of
the dashboard's system panel."""

from __future__ import annotations

from tests.functional.helpers import fake_app, run_async, screen_text, settle, wait_for
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import lr_find as L
from tui_train.core.testing import FakeTrainer, demo_script
from tui_train.tui.app import build_app
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.lr_find_screen import LrCurvePlot, LrFindScreen
from tui_train.tui.widgets.system_panel import SystemPanel


@run_async
async def test_l_on_a_paused_run_sweeps_in_the_trainer_and_enter_sets_the_suggestion(tmp_path):
    app, fakes = fake_app(tmp_path, script=demo_script())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and app.status == "running", what="running")
        await pilot.press("L")  # running: refused here, nothing sent
        await pilot.pause()
        assert not isinstance(app.screen, LrFindScreen)
        assert not any(isinstance(c, C.FindLearningRate) for c in fakes[0].commands)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.dashboard.status == "paused", what="paused")
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen) and app.screen.curve is not None, what="the curve")
        screen = app.screen
        expected = L.run_sweep(L.demo_loss).suggestion  # what the fake's synthetic sweep suggests
        assert screen.curve.suggestion == expected
        assert screen.query_one(LrCurvePlot).curve is screen.curve
        await pilot.pause()
        assert "suggested" in screen_text(app) and "valley" in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(isinstance(c, C.SetLearningRate) for c in fakes[0].commands), what="SetLearningRate")
        assert fakes[0].commands[-2:] == [C.FindLearningRate(), C.SetLearningRate(expected)]
        await wait_for(pilot, lambda: app.dashboard.base_lr == expected, what="the engine's acknowledgement")
        assert not isinstance(app.screen, LrFindScreen)
        assert any("LR range test" in line for line in app.dashboard.query_one("#log").lines_text)


@run_async
async def test_l_in_the_launcher_puts_the_suggestion_in_the_lr_field_and_the_run_starts_with_it(tmp_path):
    made, swept = [], []

    def factory(config, preset):
        made.append(config)
        return FakeTrainer(config, preset=preset)

    def finder(cfg, cancel, **options):
        swept.append(cfg)
        return L.run_sweep(L.demo_loss, steps=60)

    app = build_app(config=None, preset=None, runs_dir=tmp_path, trainer_factory=factory)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        launcher = app.screen
        launcher.lr_finder = finder
        launcher.query_one("#f-epochs").value = "2"  # the form's edits are what is swept
        await pilot.pause()
        launcher.query_one("#preset-list").focus()
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen) and app.screen.curve is not None, what="the curve")
        suggestion = app.screen.curve.suggestion
        assert swept[0].train.epochs == 2 and swept[0].name == "digits-mlp"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is launcher)
        assert launcher.query_one("#f-lr").value == f"{suggestion:.3g}"
        launcher.action_start()
        await wait_for(pilot, lambda: made and app.status == "running", what="the run")
    assert made[0].optim.lr == float(f"{suggestion:.3g}")


@run_async
async def test_the_launcher_shows_why_a_sweep_failed_and_esc_leaves_the_lr_alone(tmp_path):
    def finder(cfg, cancel, **options):
        raise L.SweepError("data.dataset 'nope': unknown")

    app = build_app(config=None, preset=None, runs_dir=tmp_path, trainer_factory=lambda c, p: FakeTrainer(c))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        launcher = app.screen
        launcher.lr_finder = finder
        before = launcher.query_one("#f-lr").value
        launcher.action_find_lr()
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen) and app.screen.error, what="the error")
        await pilot.pause()
        assert "unknown" in screen_text(app)
        await pilot.press("enter")  # nothing to apply: the screen stays
        assert isinstance(app.screen, LrFindScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is launcher)
        assert launcher.query_one("#f-lr").value == before


GPU_SAMPLE = E.SystemSample(step=40, cpu_percent=97.0, rss_bytes=812_000_000, mem_percent=41.0, mem_total_bytes=16_000_000_000,
                            gpu_percent=88.0, gpu_mem_bytes=6_000_000_000, gpu_mem_total_bytes=24_000_000_000,
                            gpu_temp_c=64.0, gpu_power_w=210.0)


@run_async
async def test_the_system_panel_shows_the_samples_with_sparklines(tmp_path):
    cpu_only = E.SystemSample(step=20, cpu_percent=50.0, rss_bytes=800_000_000, mem_percent=40.0, mem_total_bytes=16_000_000_000)
    app, fakes = fake_app(tmp_path, script=[cpu_only, GPU_SAMPLE])
    async with app.run_test(size=(160, 40)) as pilot:  # from 160 columns: beside the epochs and the log
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set())
        await settle(pilot)
        panel = app.dashboard.query_one(SystemPanel)
        assert panel.display and panel.latest == GPU_SAMPLE
        assert list(panel.history["cpu"]) == [50.0, 97.0] and list(panel.history["gpu"]) == [88.0]
        assert panel.query_one("#sys-cpu").data == [50.0, 97.0]
        text = screen_text(app)
        for label in ("cpu   97%", "rss  812M", "mem  41%/16G", "gpu  88% 64° 210W", "vram 6.0G/24G"):
            assert label in text


@run_async
async def test_a_small_terminal_shows_the_system_panel_on_t(tmp_path):
    app, fakes = fake_app(tmp_path, script=[GPU_SAMPLE])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set())
        await settle(pilot)
        panel, log = app.dashboard.query_one(SystemPanel), app.dashboard.query_one("#log")
        seen = []
        for _ in range(3):  # log -> epoch table -> system -> log
            seen.append((log.display, app.dashboard.query_one("#epochs").display, panel.display))
            await pilot.press("t")
            await pilot.pause()
        assert seen == [(True, False, False), (False, True, False), (False, False, True)]
        assert (log.display, panel.display) == (True, False)


@run_async
async def test_at_120_columns_t_switches_the_log_and_the_system_panel(tmp_path):
    app, fakes = fake_app(tmp_path, script=[GPU_SAMPLE])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set())
        await settle(pilot)
        dash = app.dashboard
        shown = lambda: tuple(dash.query_one(w).display for w in ("#epochs", "#log", "#system"))  # noqa: E731
        assert shown() == (True, True, False)
        await pilot.press("t")
        await pilot.pause()
        assert shown() == (True, False, True)
        await pilot.press("t")
        await pilot.pause()
        assert shown() == (True, True, False)


@run_async
async def test_tui_train_lr_find_opens_the_launcher_with_the_sweep_running(tmp_path, monkeypatch):
    from tui_train.core.config import load_config

    asked = []

    def finder(cfg, cancel, **options):
        asked.append((cfg.name, cfg.optim.lr, options))
        return L.run_sweep(L.demo_loss, start=options["start"], end=options["end"], steps=options["steps"])

    monkeypatch.setattr("tui_train.tui.screens.launcher_screen.subprocess_lr_finder", finder)
    cfg = load_config("digits-mlp", ["optim.lr=0.05"])
    app = build_app(config=cfg, preset="digits-mlp", runs_dir=tmp_path, overrides=["optim.lr=0.05"],  # as the CLI passes them
                    lr_find={"start": 1e-6, "end": 1.0, "steps": 40})
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen) and app.screen.curve is not None, what="the curve")
        assert asked == [("digits-mlp", 0.05, {"start": 1e-6, "end": 1.0, "steps": 40})]
        assert app.screen.curve.steps == 40 and app.screen.curve.lrs[0] == 1e-6
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        assert app.screen.query_one("#f-lr").value == "0.05"  # Esc: the form as it was
