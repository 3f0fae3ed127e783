"""The ``tui-train`` command (Typer). Heavy imports (torch, the Textual app) happen inside command
bodies so that ``tui-train --help`` stays fast.

Bad input (unknown preset, malformed TOML, wrong key or value, missing data, bad checkpoint) is
reported as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="tui-train",
    help="Train PyTorch models in a terminal UI and steer the run live from the keyboard.",
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
presets_app = typer.Typer(help="List the bundled presets, or show one.", invoke_without_command=True)
app.add_typer(presets_app, name="presets")

EXIT_BAD_INPUT = 2


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (exit code 2)."""
    typer.echo(f"tui-train: error: {message}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _load(preset: str, overrides: list[str], presets_dirs: list[Path]):
    from core.config import ConfigError, load_config

    try:
        return load_config(preset, overrides, presets_dirs)
    except ConfigError as e:
        raise fail(str(e)) from None


def _presets_dirs(presets_dir: Path | None) -> list[Path]:
    dirs = [Path.cwd()]
    if presets_dir is not None:
        if not presets_dir.is_dir():
            raise fail(f"--presets-dir {presets_dir}: no such directory")
        dirs.append(presets_dir)
    return dirs


PresetArg = Annotated[str | None, typer.Argument(
    help="Preset name (see `tui-train presets`) or path to a .toml file. Default: the launcher (TUI) or digits-mlp (headless).",
    show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s",
    help="Override a preset value, e.g. --set optim.lr=3e-4 (repeatable). Default: none.", show_default=False)]
HeadlessOpt = Annotated[bool, typer.Option("--headless",
    help="Print progress lines instead of opening the TUI (automatic when stdout is not a terminal). Default: off.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir",
    help="Torchvision-layout data root (holds e.g. MNIST/raw). Default: the preset's data.data_dir (./data).", show_default=False)]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created. Default: ./runs.")]
DeviceOpt = Annotated[str | None, typer.Option("--device",
    help="auto | cpu | cuda | mps. Default: the preset's train.device (auto).", show_default=False)]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed. Default: the preset's train.seed (0).", show_default=False)]
PresetsDirOpt = Annotated[Path | None, typer.Option("--presets-dir",
    help="Extra folder of *.toml presets (the working directory is always searched). Default: none.", show_default=False)]
CheckpointArg = Annotated[Path, typer.Argument(
    help="A checkpoint file (.pt) written by tui-train, or a run directory (its newest checkpoint).")]
ResumeOpt = Annotated[Path | None, typer.Option("--resume",
    help="Continue from a checkpoint file or a run directory (its newest checkpoint). Default: a new run.", show_default=False)]


@app.callback()
def default(ctx: typer.Context) -> None:
    """Bare `tui-train` opens the TUI launcher with the default preset selected (headless when stdout is not a terminal)."""
    if ctx.invoked_subcommand is None:
        run(preset=None)


@app.command()
def run(
    preset: PresetArg = None,
    set_: SetOpt = None,
    headless: HeadlessOpt = False,
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    presets_dir: PresetsDirOpt = None,
    resume: ResumeOpt = None,
) -> None:
    """Train a preset: opens the TUI, or prints progress lines with --headless."""
    from core.config import DEFAULT_PRESET

    overrides = list(set_ or [])
    if data_dir is not None:
        overrides.append(f"data.data_dir={_quote(str(data_dir))}")
    if device is not None:
        overrides.append(f"train.device={_quote(device)}")
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    dirs = _presets_dirs(presets_dir)
    headless = headless or not sys.stdout.isatty()
    if resume is not None:
        raise typer.Exit(_run_resume(resume, runs_dir, headless, overrides))
    config = _load(preset or DEFAULT_PRESET, overrides, dirs) if (preset or headless) else None
    name = config.name if config is not None else None
    if headless:
        raise typer.Exit(_run_headless(config, name, runs_dir))
    from tui.app import run_tui

    raise typer.Exit(run_tui(config=config, preset=name, runs_dir=runs_dir, presets_dirs=dirs,
                             start_immediately=config is not None, overrides=overrides))


def _run_headless(config, preset: str | None, runs_dir: Path, resume: Path | None = None, overrides: list[str] = ()) -> int:
    from core.checkpoint import CheckpointError
    from core.config import ConfigError
    from core.data import DataError
    from core.engine import Trainer
    from core.headless import run_headless

    trainer = Trainer(config, runs_dir=runs_dir, preset=preset, resume=resume, resume_overrides=list(overrides))
    try:
        trainer.prepare()
    except (ConfigError, DataError, CheckpointError) as e:
        raise fail(str(e)) from None
    return run_headless(trainer)


def _run_resume(resume: Path, runs_dir: Path, headless: bool, overrides: list[str]) -> int:
    from core.config import from_dict

    placeholder = from_dict({})  # replaced by the checkpoint's own config in Trainer.prepare()
    if headless:
        return _run_headless(placeholder, None, runs_dir, resume=resume, overrides=overrides)
    from tui.app import run_tui

    return run_tui(config=placeholder, preset=None, runs_dir=runs_dir, presets_dirs=[], start_immediately=True,
                   resume=resume, overrides=overrides)


@presets_app.callback()
def presets(ctx: typer.Context, presets_dir: PresetsDirOpt = None) -> None:
    """List the presets (bundled, then *.toml in the working directory and --presets-dir) with their descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from core.config import DEFAULT_PRESET, ConfigError, list_presets, read_toml

    found = list_presets(_presets_dirs(presets_dir))
    width = max((len(n) for n in found), default=0)
    for name, path in found.items():
        try:
            desc = str(read_toml(path).get("description", ""))
        except ConfigError as e:
            desc = f"(unreadable: {e})"
        mark = " (default)" if name == DEFAULT_PRESET else ""
        typer.echo(f"{name:<{width}}  {desc}{mark}")


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name or path to a .toml file.")],
    presets_dir: PresetsDirOpt = None,
) -> None:
    """Print a preset's TOML."""
    from core.config import ConfigError, resolve_preset

    try:
        path = resolve_preset(name, _presets_dirs(presets_dir))
    except ConfigError as e:
        raise fail(str(e)) from None
    typer.echo(path.read_text(encoding="utf-8"), nl=False)


@app.command("eval")
def eval_(
    checkpoint: CheckpointArg,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON. Default: a table.")] = False,
) -> None:
    """Evaluate a checkpoint on the test split."""
    from core.checkpoint import CheckpointError
    from core.config import ConfigError
    from core.data import DataError
    from core.evaluation import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(checkpoint, data_dir=str(data_dir) if data_dir else None, device=device or "auto")
    except (ConfigError, DataError, CheckpointError) as e:
        raise fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"checkpoint: {result['checkpoint']}")
    typer.echo(f"preset: {result['preset']}  step {result['step']}  epoch {result['epoch']}  ({result['test_size']} test samples)")
    for k, v in result["metrics"].items():
        typer.echo(f"  {k:<10} {v:.4f}")


@app.command()
def export(
    checkpoint: CheckpointArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .safetensors or .pt (a plain state dict). Required.",
                                      show_default=False)],
) -> None:
    """Write the model weights alone, loadable with plain torch or safetensors into your own model class."""
    from core.checkpoint import CheckpointError, export_weights, resolve
    from core.errors import first_line

    try:
        src = resolve(checkpoint)
        path, n = export_weights(src, out)
    except (CheckpointError, OSError) as e:
        raise fail(first_line(e)) from None
    typer.echo(f"exported {n} tensors from {src} to {path}")


def main() -> None:
    """The console script: run the app, then leave without interpreter finalization.

    Everything a run must keep is on disk by then (atomic checkpoints, summary.json, flushed
    logs). Finalization after a signal-interrupted run intermittently aborted in a C++ destructor
    of the torch runtime ("terminate called without an active exception", exit -6 instead of
    130; tests/e2e/test_headless_signals.py caught it in CI), so the exit code is delivered with
    os._exit after flushing stdout and stderr.
    """
    code: int | str | None = 0
    try:
        app()
    except SystemExit as e:
        code = e.code
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    if isinstance(code, str):
        try:
            sys.stderr.write(code + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        code = 1
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
