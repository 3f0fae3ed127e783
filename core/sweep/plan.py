"""A new sweep from a preset and the command line: the space checked, the metric and its
direction chosen, the plan (grid or random) written down, the sweep folder made."""

from __future__ import annotations

from pathlib import Path

from tui_train.core.config import SWEEP_TABLE, ConfigError, load_config, read_toml, resolve_preset
from tui_train.core.sweep import record as R
from tui_train.core.sweep.driver import mode_of
from tui_train.core.sweep.space import Space, check_plan_size, from_table, parse_grid, parse_random

PRUNE = ("median", "none")
"""--prune values."""


def create(preset: str, *, overrides: list[str], grid: list[str], random: list[str], trials: int | None, optuna: bool,
           metric: str | None, parallel: int, prune: str, runs_dir: Path, extra_dirs: list[Path], seed: int = 0,
           storage: str | None = None, study: str | None = None) -> tuple[Path, R.SweepRecord]:
    """Check everything (ConfigError, one line), make the sweep folder and its record."""
    path = resolve_preset(preset, extra_dirs)
    table = read_toml(path).get(SWEEP_TABLE)
    space, options = from_table(table, str(path)) if table is not None else (Space(), {})
    for text in grid:
        key, values = parse_grid(text)
        space.grid[key] = values
    for text in random:
        key, dist = parse_random(text)
        space.random[key] = dist
    method = "optuna" if optuna else str(options.get("method") or ("random" if space.random else "grid"))
    if method not in ("grid", "random", "optuna"):
        raise ConfigError(f"{path}: [sweep] method must be grid, random or optuna, got {method!r}")
    trials = trials if trials is not None else options.get("trials", 10 if method != "grid" else 0)
    if not isinstance(trials, int) or isinstance(trials, bool):
        raise ConfigError(f"sweep: trials must be a whole number, got {trials!r}")
    parallel = parallel or int(options.get("parallel", 1) or 1)
    prune = prune or str(options.get("prune", "none"))
    if prune not in PRUNE:
        raise ConfigError(f"sweep: --prune must be one of {', '.join(PRUNE)}, got {prune!r}")
    if parallel < 1:
        raise ConfigError(f"sweep: --parallel must be at least 1, got {parallel}")
    check_plan_size(space, "grid" if method == "grid" else method, trials)
    cfg = load_config(preset, overrides, extra_dirs)  # the base run is valid
    plan = space.plan(method, trials, seed) if method != "optuna" else []
    for params in plan[:50]:  # bad values show now, not as 50 failed trials (the first 50 checked)
        load_config(preset, overrides + R.Trial(0, params).overrides(), extra_dirs)
    metric = metric or str(options.get("metric") or cfg.early_stopping.monitor)
    mode = cfg.monitor_mode if metric == cfg.early_stopping.monitor else mode_of(metric)
    sweep_dir = R.new_sweep_dir(runs_dir, cfg.name)
    rec = R.SweepRecord(preset=str(path), overrides=list(overrides), space=space.to_json(), method=method, metric=metric,
                        mode=mode, trials_planned=len(plan) if method != "optuna" else trials, parallel=parallel,
                        prune=prune, seed=seed, runs_dir=str(runs_dir), extra_dirs=[str(d) for d in extra_dirs],
                        trials=[R.Trial(number=i, params=p) for i, p in enumerate(plan)])
    if method == "optuna":
        rec.storage = f"{storage or (sweep_dir / 'optuna.journal').resolve()}#{study or sweep_dir.name}"
    R.save(sweep_dir, rec)
    return sweep_dir, rec


def join(sweep_dir: Path, runs_dir: Path, parallel: int) -> tuple[Path, R.SweepRecord]:
    """A worker of another machine's Optuna sweep (its storage on a shared folder): a sweep folder
    of this machine's own, asking the same study for trials."""
    leader = R.load(sweep_dir)
    if leader.method != "optuna":
        raise ConfigError(f"{sweep_dir}: only an --optuna sweep can be joined (this one is {leader.method})")
    mine = R.new_sweep_dir(runs_dir, Path(leader.preset).stem + "-worker")
    rec = R.SweepRecord(**{**leader.to_json(), "trials": [], "parallel": parallel or leader.parallel,
                           "runs_dir": str(runs_dir), "state": "running"})
    rec.trials = []
    R.save(mine, rec)
    return mine, rec
