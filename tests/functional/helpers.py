"""Helpers for the Pilot tests: build the app on a scripted fake trainer, wait on conditions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

from tui_train.core import config as cfgmod
from tui_train.core.config import RunConfig
from tui_train.core.testing import FakeTrainer
from tui_train.tui.app import TrainApp, build_app


def tiny_config(**changes) -> RunConfig:
    """A valid config (digits, tiny); the fake trainer ignores it, the real engine trains it."""
    cfg = cfgmod.from_dict({"name": "tiny", "description": "tiny test run", "data": {"dataset": "digits"}})
    return cfgmod.replace(cfg, **changes) if changes else cfg


def fake_app(tmp_path: Path, **fake_kwargs) -> tuple[TrainApp, list[FakeTrainer]]:
    """An app going straight to the dashboard, its trainer a FakeTrainer(**fake_kwargs)."""
    fakes: list[FakeTrainer] = []

    def factory(config: RunConfig, preset: str) -> FakeTrainer:
        fake = FakeTrainer(config, preset=preset, **fake_kwargs)
        fakes.append(fake)
        return fake

    app = build_app(config=tiny_config(), preset="tiny", runs_dir=tmp_path, trainer_factory=factory,
                    start_immediately=True)
    return app, fakes


async def wait_for(pilot: Pilot, predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Drain events and let the app run until ``predicate()`` is true (fails after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        app = pilot.app
        if isinstance(app, TrainApp):
            app.pump_events()
        await pilot.pause(0.02)
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")


async def settle(pilot: Pilot) -> None:
    """Drain what is queued and force the plots to redraw (for deterministic frames)."""
    app = pilot.app
    if isinstance(app, TrainApp):
        app.pump_events()
        if app.dashboard is not None and app.dashboard.ready:
            app.dashboard.flush(force=True)
            app.dashboard.refresh_plots(force=True)
    await pilot.pause()
    await pilot.pause()


def screen_text(app: App) -> str:
    """The current screen (modal layers included) as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def run_async(fn):
    """Run an ``async def`` test with asyncio.run (no pytest async plugin is a dependency)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
