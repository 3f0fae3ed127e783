"""``tui-train sweep``: the command (registered on the CLI by :func:`register`); the driver is
:mod:`tui_train.core.sweep.driver`, the screen :mod:`tui_train.tui.screens.sweep_screen` (opened by
:func:`tui_train.tui.app.run_sweep_tui` on a terminal)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from tui_train.core.sweep import record as R


def leaderboard_rows(rec: R.SweepRecord) -> list[dict]:
    """The leaderboard as plain rows (``--json``; the screen shows the same): trial, parameters,
    status, best metric value, epochs, seconds, run directory, best (one of them)."""
    best = rec.best()
    return [{"trial": t.number, "params": t.params, "status": t.status, "value": t.value, "metric": rec.metric,
             "epochs": t.epoch, "seconds": None if t.seconds is None else round(t.seconds, 1), "run_dir": t.run_dir,
             "best": t is best, "reason": t.reason} for t in rec.leaderboard()]


def leaderboard_text(rec: R.SweepRecord) -> str:
    """The leaderboard as a plain-text table (headless)."""
    keys = list(dict.fromkeys(k for t in rec.trials for k in t.params))
    head = ["trial", *keys, "status", rec.metric, "epochs", "time"]
    rows = []
    for r in leaderboard_rows(rec):
        value = "-" if r["value"] is None else f"{r['value']:.6g}"
        rows.append([f"{r['trial']}{' *' if r['best'] else ''}", *(str(r["params"].get(k, "")) for k in keys), r["status"],
                     value, str(r["epochs"]), "-" if r["seconds"] is None else f"{r['seconds']:.0f}s"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *rows])


def register(app: typer.Typer, *, fail, say, overrides_of) -> None:
    """Add ``sweep`` to ``app`` (``fail``/``say``/``overrides_of``: the CLI's own helpers)."""

    @app.command(context_settings={"help_option_names": ["--help"]})
    def sweep(
        preset: Annotated[str | None, typer.Argument(help="Preset name or .toml file; its [sweep] table adds to the space.")] = None,
        set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a preset value for every trial.")] = None,
        grid: Annotated[list[str] | None, typer.Option("--grid", help="KEY=V1,V2,...: one trial per combination.")] = None,
        random: Annotated[list[str] | None, typer.Option("--random", help="KEY=LO:HI[:log] or KEY=A,B,...: drawn per trial.")] = None,
        trials: Annotated[int | None, typer.Option("--trials", help="Trials of a random or Optuna search. Default: 10.")] = None,
        optuna: Annotated[bool, typer.Option("--optuna", help="Optuna's TPE sampler (tui-train[sweep]). Default: off.")] = False,
        metric: Annotated[str | None, typer.Option("--metric", help="Ranks the trials. Default: early_stopping.monitor.")] = None,
        parallel: Annotated[int, typer.Option("--parallel", help="Trials at once (threads split). Default: 1.")] = 0,
        prune: Annotated[str, typer.Option("--prune", help="median or none. Default: none.")] = "",
        runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Sweep folder and trials go here. Default: ./runs.")] = Path("runs"),
        presets_dir: Annotated[Path | None, typer.Option("--presets-dir", help="Extra folder of *.toml presets.")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the random plan and of TPE. Default: 0.")] = 0,
        resume: Annotated[Path | None, typer.Option("--resume", help="Go on with a sweep folder. Default: a new sweep.")] = None,
        join: Annotated[Path | None, typer.Option("--join", help="Work for another machine's --optuna sweep folder.")] = None,
        storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage: journal file or RDB URL.")] = None,
        headless: Annotated[bool, typer.Option("--headless", help="Progress lines, leaderboard, 'best:' line.")] = False,
        json_: Annotated[bool, typer.Option("--json", help="Print only the final leaderboard as JSON.")] = False,
) -> None:
        """Search hyperparameters: trials are ordinary runs (attach, ctl, fork, replay work on each), ranked live."""
        from tui_train.core.config import ConfigError
        from tui_train.core.sweep import plan

        extra = [presets_dir] if presets_dir else []
        try:
            if resume is not None:
                sweep_dir, rec = Path(resume), R.load(resume)
            elif join is not None:
                sweep_dir, rec = plan.join(join, runs_dir, parallel)
            else:
                if preset is None:
                    raise fail("sweep: give a PRESET (or --resume SWEEP_DIR, --join SWEEP_DIR)")
                sweep_dir, rec = plan.create(preset, overrides=overrides_of(set_), grid=grid or [], random=random or [],
                                             trials=trials, optuna=optuna, metric=metric, parallel=parallel, prune=prune,
                                             runs_dir=runs_dir, extra_dirs=extra, seed=seed, storage=storage)
        except (ConfigError, ValueError) as e:
            raise fail(str(e)) from None
        if rec.method == "optuna":
            try:
                import optuna as _optuna  # noqa: F401 - present, or one line
            except ImportError:
                raise fail("sweep --optuna needs Optuna: pip install 'tui-train[sweep]'") from None
        if headless or json_ or not sys.stdout.isatty():
            raise typer.Exit(_headless(sweep_dir, rec, json_, say))
        from tui_train.tui.app import run_sweep_tui

        code = run_sweep_tui(sweep_dir, rec)
        if rec.state != "running":  # the sweep is over (not left going): its leaderboard stays in the terminal
            say(leaderboard_text(rec))
            say(best_line(rec))
        raise typer.Exit(code)


def _headless(sweep_dir: Path, rec: R.SweepRecord, as_json: bool, say) -> int:
    """Run the driver in this thread with progress lines; SIGINT/SIGTERM/SIGHUP stop the sweep (its
    running trials save and end interrupted; --resume continues them)."""
    from tui_train.core.sweep.driver import SweepDriver

    stop = threading.Event()
    lines = (lambda s: None) if as_json else say

    def on_signal(signum, frame):
        if not stop.is_set():
            lines(f"{signal.Signals(signum).name}: stopping the sweep; its running trials save and end interrupted "
                  f"(tui-train sweep --resume {sweep_dir})")
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    lines(f"sweep {sweep_dir} ({rec.method}, {rec.trials_planned} trial(s), {rec.parallel} at once, "
          f"{rec.metric} {'max' if rec.mode == 'max' else 'min'})")
    try:
        code = SweepDriver(rec, sweep_dir, say=lines).run(stop)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if as_json:
        typer.echo(json.dumps({"sweep_dir": str(sweep_dir.resolve()), "state": rec.state, "metric": rec.metric,
                               "mode": rec.mode, "trials": leaderboard_rows(rec)}))
    else:
        say(leaderboard_text(rec))
        say(best_line(rec))
    return code


def best_line(rec: R.SweepRecord) -> str:
    """``best: <metric>=<value> <params>``, or why there is none."""
    best = rec.best()
    if best is None:
        return f"best: none (no trial measured {rec.metric})"
    return f"best: {rec.metric}={best.value:.6g} " + " ".join(f"{k}={v}" for k, v in best.params.items())
