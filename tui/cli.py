"""The ``tui-train`` command (Typer). Heavy imports (torch, the Textual app) happen inside command
bodies so that ``tui-train --help`` stays fast.

Bad input (unknown preset, malformed TOML, wrong key or value, missing data, bad checkpoint) is
reported as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from tui_train.core.errors import catch_startup_signals, release_startup_signals
from tui_train.core.heap import settle_heap
from tui_train.core.text import printable
from tui_train.tui.options import HANGUP_CHOICES

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


def _run_tui(**kwargs) -> int:
    """The TUI (tui.app.run_tui) at a lower CPU priority than the trainers it starts or watches
    (core.live.spawn.lower_ui_priority: on a busy machine the drawing waits, training does not)."""
    from tui_train.core.live.spawn import lower_ui_priority
    from tui_train.tui.app import run_tui

    if os.environ.get("TUI_TRAIN_IN_PROCESS", "") in ("", "0"):  # an in-thread trainer shares this process
        lower_ui_priority()
    release_startup_signals()  # the app handles signals from here (tui/app.py)
    _viewer_ignores_save_signal()
    return run_tui(**kwargs)


def _viewer_ignores_save_signal() -> None:
    """The TUI is a viewer: the run's save signal (core.run.slurm; SIGUSR1 inside a SLURM job, whose
    default action would end this process) is for the trainer process, which takes it over."""
    from tui_train.core.run import slurm

    save = slurm.save_signal()
    if save is not None and threading.current_thread() is threading.main_thread():
        signal.signal(save, signal.SIG_IGN)


def say(text: str, err: bool = False) -> None:
    """One line to the terminal (stderr with ``err``). Text from outside (an exception's ANSI
    escapes, a run or preset name, a reason from the socket) goes through
    :func:`core.text.printable`: control characters are written as escapes, never obeyed (STYLE
    habit 23). JSON output is already escaped by json.dumps and goes to typer.echo directly."""
    typer.echo(printable(text), err=err)


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (exit code 2)."""
    say(f"tui-train: error: {message}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _overrides(set_: list[str] | None, data_dir: Path | None, device: str | None, seed: int | None = None) -> list[str]:
    """``--set`` items, then the options that stand for one (``--data-dir``, ``--device``, ``--seed``)."""
    overrides = list(set_ or [])
    if data_dir is not None:
        overrides.append(f"data.data_dir={_quote(str(data_dir))}")
    if device is not None:
        overrides.append(f"train.device={_quote(device)}")
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    return overrides


def _load(preset: str, overrides: list[str], presets_dirs: list[Path]):
    from tui_train.core.config import ConfigError, load_config

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
FromOpt = Annotated[Path | None, typer.Option("--from",
    help="Fork: a new run (new run directory) from a checkpoint or run directory's newest, its weights, optimizer and "
         "position, with --set changes (and PRESET's config when given). Default: no fork.", show_default=False)]
NprocOpt = Annotated[int, typer.Option("--nproc-per-node", min=0,
    help="Train on N processes of this node with torchrun (one GPU each on CUDA, gloo on CPU). Default: one process.")]
NnodesOpt = Annotated[str | None, typer.Option(
    "--nnodes", help="torchrun --nnodes (multi-node, e.g. 2 or 1:4). Default: 1.", show_default=False)]
RdzvOpt = Annotated[str | None, typer.Option(
    "--rdzv-endpoint", help="torchrun --rdzv-endpoint HOST:PORT. Default: none (--standalone).", show_default=False)]
RestartsOpt = Annotated[int | None, typer.Option("--max-restarts", min=0,
    help="torchrun --max-restarts: a failed group restarts from its newest checkpoint. Default: 0.", show_default=False)]
NotifyOpt = Annotated[list[str] | None, typer.Option("--notify", metavar="URL",
    help="Tell this URL when the run ends, fails, reaches its target or pauses for a decision, through apprise "
         "(pip install 'tui-train[notify]'): ntfy://TOPIC, slack://..., json://HOST/PATH... Repeatable; added to the "
         "preset's [notify] urls and to TUI_TRAIN_NOTIFY. Only its scheme is ever shown. Default: none.", show_default=False)]
NoNotifyTerminalOpt = Annotated[bool, typer.Option("--no-notify-terminal",
    help="No desktop notifications through this terminal's escape sequences (OSC 9/777/99 and the bell; "
         "also TUI_TRAIN_NOTIFY_TERMINAL=0). Default: on.")]
SignalSaveOpt = Annotated[str | None, typer.Option("--signal-save", metavar="SIG",
    help="A signal that saves a checkpoint and ends the run as preempted (exit 75), e.g. USR1 for sbatch "
         "--signal=B:USR1@90; then a SLURM job is requeued (scontrol requeue). none: off. Default: USR1 inside a SLURM "
         "job (SLURM_JOB_ID set), else none.", show_default=False)]
RequeueOpt = Annotated[bool, typer.Option("--requeue/--no-requeue",
    help="After --signal-save ended the run: scontrol requeue this SLURM job. Default: on (inside a SLURM job).")]
RunNameOpt = Annotated[str | None, typer.Option("--run-name",
    help="The run directory's name under --runs-dir (instead of <stamp>-<preset>), so that --resume auto finds it "
         "again. Default: <stamp>-<preset>.", show_default=False)]
OnHangupOpt = Annotated[str, typer.Option("--on-hangup",
    help="What a hang-up of this terminal (an SSH drop) does to the run: detach (it trains on; `tui-train attach` comes back) "
         "or stop (save a checkpoint, end as interrupted). Default: detach.")]


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
    from_: FromOpt = None,
    on_hangup: OnHangupOpt = "detach",
    nproc_per_node: NprocOpt = 0,
    nnodes: NnodesOpt = None,
    rdzv_endpoint: RdzvOpt = None,
    max_restarts: RestartsOpt = None,
    notify: NotifyOpt = None,
    no_notify_terminal: NoNotifyTerminalOpt = False,
    signal_save: SignalSaveOpt = None,
    requeue: RequeueOpt = True,
    run_name: RunNameOpt = None,
) -> None:
    """Train a preset: opens the TUI on a trainer process of its own (detach with d), or prints progress lines with --headless."""
    if threading.current_thread() is threading.main_thread():
        catch_startup_signals()
    try:
        from tui_train.core.config import DEFAULT_PRESET

        if on_hangup not in HANGUP_CHOICES:
            raise fail(f"--on-hangup {on_hangup!r} is not allowed (allowed: {', '.join(HANGUP_CHOICES)})")
        overrides = _overrides(set_, data_dir, device, seed)
        dirs = _presets_dirs(presets_dir)
        headless = headless or not sys.stdout.isatty()
        group = {"nnodes": nnodes, "rdzv_endpoint": rdzv_endpoint, "max_restarts": max_restarts}
        resume, new_dir = _preemption(signal_save, requeue, run_name, resume, from_, runs_dir, headless)
        if resume is not None and from_ is None:
            _check_resume_preset(resume, preset, dirs)
        _notifications(notify, preset or (DEFAULT_PRESET if headless and resume is None and from_ is None else None), dirs)
        _terminal_notifications(no_notify_terminal)
        if nproc_per_node or any(v is not None for v in group.values()):
            if not nproc_per_node:
                raise fail("--nnodes, --rdzv-endpoint and --max-restarts go with --nproc-per-node N")
            if os.environ.get("TORCHELASTIC_RUN_ID"):
                raise fail("--nproc-per-node: this is already a torchrun worker (drop --nproc-per-node, or run without torchrun)")
            raise typer.Exit(_run_group(preset or DEFAULT_PRESET, overrides, dirs, presets_dir, runs_dir, resume, headless,
                                        nproc_per_node, group, on_hangup, new_dir))
        if from_ is not None:
            if resume is not None:
                raise fail("--from and --resume: a fork starts a new run, a resume continues one; give one of them")
            raise typer.Exit(_run_fork(from_, preset, overrides, dirs, runs_dir, headless, on_hangup))
        if resume is not None:
            raise typer.Exit(_run_resume(resume, runs_dir, headless, overrides, on_hangup))
        config = _load(preset or DEFAULT_PRESET, overrides, dirs) if (preset or headless) else None
        name = config.name if config is not None else None
        if headless:
            raise typer.Exit(_run_headless(config, name, runs_dir, run_dir=new_dir))
        raise typer.Exit(_run_tui(config=config, preset=name, runs_dir=runs_dir, presets_dirs=dirs,
                                 start_immediately=config is not None, overrides=overrides, on_hangup=on_hangup))
    finally:  # every way out (one-line errors included) gives the handlers back
        release_startup_signals()


def _notifications(urls: list[str] | None, preset: str | None, dirs: list[Path]) -> None:
    """``--notify`` and the preset's ``[notify] urls`` join TUI_TRAIN_NOTIFY, which the trainer reads
    (this process, its trainer process or torchrun's workers: core.run.notify). A malformed URL or
    table: one line (never the URL), exit 2."""
    from tui_train.core.config import ConfigError, notify_urls
    from tui_train.core.run.notify import NOTIFY_ENV, check_urls, from_env, merged

    try:
        found = merged(check_urls(from_env(), NOTIFY_ENV),
                       check_urls(notify_urls(preset, dirs), f"{preset}: notify.urls") if preset else [],
                       check_urls(urls or [], "--notify"))
    except (ConfigError, ValueError) as e:
        raise fail(str(e)) from None
    if found:
        os.environ[NOTIFY_ENV] = " ".join(found)


def _terminal_notifications(off: bool) -> None:
    """``--no-notify-terminal``: TUI_TRAIN_NOTIFY_TERMINAL=0 for the dashboards of this process (tui.notify_terminal)."""
    if off:
        from tui_train.tui.notify_terminal import TERMINAL_ENV

        os.environ[TERMINAL_ENV] = "0"


@app.command("lr-find")
def lr_find(
    preset: PresetArg = None,
    set_: SetOpt = None,
    headless: HeadlessOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole curve and every suggestion as JSON on stdout "
                                          "(implies --headless). Default: a summary.")] = False,
    start_lr: Annotated[float, typer.Option("--start-lr", help="First learning rate of the sweep. Default: 1e-7.")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="Last learning rate of the sweep. Default: 10.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", help="Sweep steps, one batch each (5 to 1000). Default: 100.")] = 100,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = None,
    presets_dir: PresetsDirOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
) -> None:
    """LR range test: sweep the learning rate exponentially on a fresh copy of the preset's model and
    suggest one (fastai's valley rule). On a terminal it opens the launcher with the sweep's curve:
    Enter puts the suggestion in the learning rate field. Headless it ends with `suggested lr: X`."""
    from tui_train.core.config import DEFAULT_PRESET
    from tui_train.core.lr_find import check_options

    why = check_options(start_lr, end_lr, steps)
    if why:
        raise fail(f"lr-find: {why.replace('start_lr', '--start-lr').replace('end_lr', '--end-lr').replace('steps', '--steps')}")
    overrides = _overrides(set_, data_dir, device)
    dirs = _presets_dirs(presets_dir)
    config = _load(preset or DEFAULT_PRESET, overrides, dirs)
    options = {"start": start_lr, "end": end_lr, "steps": steps}
    if not (headless or as_json or not sys.stdout.isatty()):
        raise typer.Exit(_run_tui(config=config, preset=config.name, presets_dirs=dirs, overrides=overrides, lr_find=options,
                                  runs_dir=runs_dir))
    raise typer.Exit(_lr_find_headless(config, options, as_json))


def _lr_find_headless(config, options: dict, as_json: bool) -> int:
    from tui_train.core.config import ConfigError
    from tui_train.core.lr_find import SweepError, describe
    from tui_train.core.train.data import DataError
    from tui_train.core.train.lr_sweep import find_lr

    try:
        curve, device = find_lr(config, **options)
    except (ConfigError, DataError, SweepError) as e:
        raise fail(str(e)) from None
    except Exception as e:  # noqa: BLE001 - the user's model failing mid-sweep: one line and exit 1, never a traceback
        from tui_train.core.errors import one_line

        say(f"tui-train: the LR range test failed: {one_line(e)}", err=True)
        return 1
    if as_json:
        typer.echo(json.dumps({"preset": config.name, "device": device, **curve.to_json()}, indent=2))
        return 0 if curve.suggestion is not None else 1
    say(f"lr range test: {config.name} on {device}, lr {curve.start_lr:g} -> {curve.end_lr:g} over {curve.steps} steps "
               f"(smoothed loss)")
    n = len(curve.lrs)
    for i in sorted({round(k * (n - 1) / 11) for k in range(12)}) if n else ():
        say(f"  lr {curve.lrs[i]:9.3g}   loss {curve.losses[i]:.4f}")
    say(describe(curve.suggestions, n, curve.stopped))
    say(f"suggested lr: {curve.suggestion:.3g}" if curve.suggestion is not None else "suggested lr: none")
    return 0 if curve.suggestion is not None else 1


def _run_headless(config, preset: str | None, runs_dir: Path, resume: Path | None = None, overrides: list[str] = (),
                  run_dir: Path | None = None) -> int:
    """A run in this process (or a torchrun worker); ``run_dir``: a new run's folder (--run-name)."""
    from tui_train.core.config import ConfigError
    from tui_train.core.live.launch import forget_run_dir, remember_run_dir, worker_run_dir
    from tui_train.core.run.headless import run_headless
    from tui_train.core.train.checkpoint import CheckpointError
    from tui_train.core.train.data import DataError
    from tui_train.core.train.distributed import DistributedError, from_env, restart_checkpoint
    from tui_train.core.train.engine import Trainer

    try:
        world = from_env()  # a torchrun worker: its rank; else a single process
    except DistributedError as e:
        raise fail(str(e)) from None
    run_dir = (worker_run_dir(runs_dir) if os.environ.get("TORCHELASTIC_RUN_ID") else None) or run_dir
    again = restart_checkpoint(world.restart, run_dir)
    if again is not None:  # torchrun restarted the group: the run goes on from its newest checkpoint
        resume = again
    trainer = Trainer(config, runs_dir=runs_dir, preset=preset, resume=resume, resume_overrides=list(overrides), world=world,
                      run_dir=None if resume is not None else run_dir)
    try:
        trainer.prepare()
    except (ConfigError, DataError, CheckpointError, DistributedError) as e:
        raise fail(str(e)) from None
    settle_heap()  # the start-up's objects: never scanned again by a full collection mid-run
    if not world.is_main:  # rank 0 reports and hosts the endpoint; the others train quietly
        with open(os.devnull, "w") as quiet:
            try:
                return worker_exit_code(run_headless(trainer, out=quiet, requeue=False), world.enabled)  # rank 0 requeues
            finally:
                release_startup_signals()
    if not world.enabled:
        return _host_and_run(trainer)
    remember_run_dir(runs_dir, trainer.run_dir)
    code = _host_and_run(trainer)
    if code != 1:  # the run is over for good (a failed one may be restarted by torchrun and needs it)
        forget_run_dir(runs_dir)
    return worker_exit_code(code, world.enabled)


def worker_exit_code(code: int, enabled: bool) -> int:
    """The exit code of a process of a torchrun group. An ``unsaved`` run (it trained to its end,
    but a checkpoint was not written) or a ``preempted`` one exits 0 to a torchrun our launcher
    started: torchrun would take any other code for a crashed worker (its error report, an elastic
    restart); the launcher reads summary.json and exits that status's EXIT_CODES entry itself. A
    group started by hand keeps the code."""
    from tui_train.core.live.launch import RUN_DIR_ENV
    from tui_train.core.status import EXIT_CODES

    if enabled and code in (EXIT_CODES["unsaved"], EXIT_CODES["preempted"]) and os.environ.get(RUN_DIR_ENV):
        return 0
    return code


def _preemption(signal_save: str | None, requeue: bool, run_name: str | None, resume: Path | None, from_: Path | None,
                runs_dir: Path, headless: bool) -> tuple[Path | None, Path | None]:
    """``--signal-save``, ``--no-requeue``, ``--run-name`` and ``--resume auto`` (core.run.slurm):
    checked (bad input: one line, exit 2) and handed to every process of the run through the
    environment. Returns (what to resume: ``resume`` as given, or the run ``auto`` found, or None;
    the folder of a new named run, or None for ``<stamp>-<preset>``)."""
    from tui_train.core.run import slurm

    given = signal_save if signal_save is not None else os.environ.get(slurm.SIGNAL_ENV)
    if given is not None:
        try:
            sig = slurm.parse_signal(given)
        except ValueError as e:
            raise fail(f"--signal-save {e}" if signal_save is not None else f"{slurm.SIGNAL_ENV}: {e}") from None
        os.environ[slurm.SIGNAL_ENV] = sig.name.removeprefix("SIG") if sig is not None else "none"
    if not requeue:
        os.environ[slurm.REQUEUE_ENV] = "0"
    slurm.catch_early(slurm.save_signal())  # while starting: the run stops as preempted once it has begun
    why = slurm.check_run_name(run_name) if run_name is not None else ""
    if why:
        raise fail(f"--run-name {why}")
    auto = resume is not None and str(resume) == "auto"
    if run_name is not None and (from_ is not None or (resume is not None and not auto)):
        raise fail("--run-name names a new run (and finds it again with --resume auto); it does not go with --from or "
                   "--resume PATH")
    if auto and from_ is not None:
        raise fail("--from and --resume: a fork starts a new run, a resume continues one; give one of them")
    if auto:
        resume, new_dir, note = slurm.resume_auto(runs_dir, run_name)
        say(note)
    elif run_name is not None:
        new_dir = runs_dir / run_name
        if new_dir.exists():
            raise fail(f"--run-name {run_name}: {new_dir} exists; continue it with --resume auto (or --resume {new_dir}), "
                       f"or choose another name")
    else:
        new_dir = None
    if new_dir is not None and not headless:
        raise fail("--run-name: a new named run trains headless (add --headless); the TUI names its runs <stamp>-<preset>")
    return resume, new_dir


def _check_resume_preset(resume: Path, preset: str | None, dirs: list[Path]) -> None:
    """``run PRESET --resume RUN``: a resume continues the run with its saved config, so a PRESET
    other than the run's own would be silently ignored (issue 20, defect 7): refused in one line,
    pointing to --set (change values) and --from (a fork with that preset's config)."""
    if preset is None:
        return
    from tui_train.core.config import ConfigError, load_config
    from tui_train.core.train import checkpoint as ckpt

    try:
        saved = ckpt.load(ckpt.resolve(resume)).get("preset")
    except ckpt.CheckpointError as e:
        raise fail(str(e)) from None
    names = {preset}
    try:
        names.add(load_config(preset, (), dirs).name)  # a path to a .toml stands for the name it gives
    except ConfigError:
        pass
    if saved not in names:
        raise fail(f"--resume {resume}: a resume continues the run with its saved config (preset {saved!r}); "
                   f"PRESET {preset!r} would be ignored. Drop it (change values with --set), or fork a new run "
                   f"with that preset's config: tui-train run {preset} --from {resume}")


def _resume_note(resume: Path) -> str:
    """A line for resuming a run that had ended (early_stopped, completed, stopped): it trains on
    and its summary.json records the earlier outcome under ``earlier`` ('' for an unfinished run)."""
    from tui_train.core.train import checkpoint as ckpt

    try:
        run_dir = ckpt.run_dir_of(ckpt.resolve(resume))
        prev = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (ckpt.CheckpointError, OSError, ValueError):
        return ""
    status = prev.get("status") if isinstance(prev, dict) else None
    if status not in ("early_stopped", "completed", "stopped"):
        return ""
    return (f"resuming a run that ended {status} ({prev.get('reason', '')}) at step {prev.get('steps')}: "
            f"training goes on; summary.json keeps that outcome under 'earlier'")


def _run_group(preset: str, overrides: list[str], dirs: list[Path], presets_dir: Path | None, runs_dir: Path,
               resume: Path | None, headless: bool, nproc: int, group: dict, on_hangup: str, new_dir: Path | None = None) -> int:
    """``run --nproc-per-node N``: the same run under torchrun, one worker per process. The preset
    is checked here first (a bad one gets its one line before any process starts). ``new_dir``: a
    new run's folder (--run-name)."""
    from tui_train.core.live import launch
    from tui_train.core.run.runlog import new_run_dir

    config = _load(preset, overrides, dirs) if resume is None else None
    worker = ([preset] if resume is None else []) + ["--runs-dir", str(runs_dir)]
    if presets_dir is not None:
        worker += ["--presets-dir", str(presets_dir)]
    for item in overrides:
        worker += ["--set", item]
    if resume is not None:
        from tui_train.core.config import ConfigError
        from tui_train.core.train import checkpoint as ckpt

        try:
            src, _, _ = ckpt.load_for_resume(resume, overrides)  # bad --set: one line before any process starts
            run_dir = ckpt.run_dir_of(src)
        except (ckpt.CheckpointError, ConfigError) as e:
            raise fail(str(e)) from None
        worker += ["--resume", str(resume)]
    else:
        try:
            run_dir = new_run_dir(runs_dir, config.name) if new_dir is None else new_dir
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise fail(f"--runs-dir {runs_dir}: cannot create a run directory there ({e.strerror or e})") from None
    cmd = launch.torchrun_command(nproc, worker, group)
    restarts = int(group.get("max_restarts") or 0) if launch.is_single_node(group) else 0  # else torchrun's own
    if headless:
        return _wait_group(launch.start_group(cmd, run_dir, detached=False, restarts=restarts), run_dir)
    proc = launch.start_group(cmd, run_dir, detached=True, restarts=restarts)
    why = launch.wait_for_endpoint(proc, run_dir)
    if why:
        raise fail(why)
    from tui_train.core.live.remote import RemoteTrainer
    return _run_tui(config=None, preset=None, runs_dir=runs_dir, attach=run_dir, live=None, on_hangup=on_hangup,
                   attach_factory=lambda chosen: RemoteTrainer(attach=chosen))


def _wait_group(proc, run_dir: Path) -> int:
    """A headless launcher: hand signals on to the group while waiting for it
    (core.live.launch.wait_forwarding), and exit with the run's final status's code (summary.json);
    a preempted SLURM job is requeued here, once every rank has ended (the workers leave it to this
    launcher)."""
    from tui_train.core.live import launch
    from tui_train.core.run import slurm
    from tui_train.core.status import exit_code

    code = launch.wait_forwarding(proc)
    try:
        status = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("status", "failed")
    except (OSError, ValueError, AttributeError):
        status = "failed"
    if code != 0 and status == "failed":
        say(f"tui-train: the run failed: {launch.failure_reason(run_dir)} (torchrun's report: {run_dir / 'launcher.log'})",
                   err=True)
    said = slurm.requeue() if status == "preempted" else ""
    if said:
        say(f"tui-train: {said}")
    return exit_code(status)


def _host_and_run(trainer) -> int:
    """Train headless in this process, hosting the run's control endpoint (attach, ctl): core.train.serve.run_hosted."""
    from tui_train.core.train.serve import run_hosted

    def announce(endpoint) -> None:
        say(f"attach: tui-train attach {trainer.run_dir} · steer: tui-train ctl {trainer.run_dir} pause")

    def without(error) -> None:
        say(f"tui-train: warning: {error}; training without a control endpoint", err=True)

    return run_hosted(trainer, announce, without_endpoint=without)


def _run_resume(resume: Path, runs_dir: Path, headless: bool, overrides: list[str], on_hangup: str = "detach") -> int:
    from tui_train.core.config import from_dict

    placeholder = from_dict({})  # replaced by the checkpoint's own config in Trainer.prepare()
    if headless:
        note = _resume_note(resume)
        if note:
            say(note)
        return _run_headless(placeholder, None, runs_dir, resume=resume, overrides=overrides)
    return _run_tui(config=placeholder, preset=None, runs_dir=runs_dir, presets_dirs=[], start_immediately=True,
                   resume=resume, overrides=overrides, on_hangup=on_hangup)


def _run_fork(source: Path, preset: str | None, overrides: list[str], dirs: list[Path], runs_dir: Path, headless: bool,
              on_hangup: str) -> int:
    """``run [PRESET] --from CHECKPOINT|RUN_DIR``: a new run from that checkpoint (a fork)."""
    from tui_train.core.config import from_dict
    from tui_train.core.train import checkpoint as ckpt

    try:
        src = ckpt.resolve(source)
    except ckpt.CheckpointError as e:
        raise fail(str(e)) from None
    if not src.is_file():
        raise fail(f"--from {source}: no such checkpoint file or run directory")
    config = _load(preset, overrides, dirs) if preset else from_dict({})  # no preset: the checkpoint's config
    if headless:
        from tui_train.core.config import ConfigError
        from tui_train.core.train.checkpoint import CheckpointError
        from tui_train.core.train.data import DataError
        from tui_train.core.train.engine import Trainer

        trainer = Trainer(config, runs_dir=runs_dir, preset=config.name if preset else None, resume=src,
                          resume_overrides=[] if preset else overrides, fork=True, fork_config=bool(preset))
        try:
            trainer.prepare()
        except (ConfigError, DataError, CheckpointError) as e:
            raise fail(str(e)) from None
        settle_heap()
        return _host_and_run(trainer)
    from tui_train.tui.app import default_trainer_factory

    factory = default_trainer_factory(runs_dir, resume=src, overrides=[] if preset else overrides,
                                      resume_preset=config.name if preset else None, fork=True, fork_config=bool(preset))
    return _run_tui(config=config, preset=config.name if preset else None, runs_dir=runs_dir, presets_dirs=dirs,
                   start_immediately=True, trainer_factory=factory, on_hangup=on_hangup)


RunDirArg = Annotated[Path | None, typer.Argument(
    help="A live run's directory. Default: the newest live run under --runs-dir.", show_default=False)]


def _live_run(run_dir: Path | None, runs_dir: Path, pick: bool = False):
    """(its endpoint pointer, None) for one live run, or (None, pointers) when several are live
    and ``pick``; one-line error (exit 2) when there is none. Stale endpoints are cleaned and said."""
    from tui_train.core.run.endpoint import EndpointError, live_runs, probe

    try:
        if run_dir is not None:
            if not run_dir.is_dir():
                raise fail(f"{run_dir}: no such run directory")
            ptr, why = probe(run_dir)
            if ptr is None:
                raise fail(_not_live(run_dir, why))
            return ptr, None
        if not runs_dir.is_dir():
            raise fail(f"--runs-dir {runs_dir}: no such directory (no run has been started there)")
        runs = live_runs(runs_dir)
    except EndpointError as e:
        raise fail(str(e)) from None
    if not runs:
        raise fail(f"no live run under {runs_dir} (start one with `tui-train run`, or give a run directory; "
                   f"past runs: `tui-train runs --runs-dir {runs_dir}`)")
    if len(runs) > 1 and pick:
        return None, runs
    return runs[0], None


def _not_live(run_dir: Path, why: str) -> str:
    """Why ``run_dir`` cannot be attached to, and, for a run that ended, how to see it (issue 20 defect 9)."""
    if why.startswith("the run is live"):  # on another machine
        return f"{run_dir}: {why}"
    from tui_train.core.rundir.runs import read_row
    from tui_train.core.status import UNFINISHED

    try:
        status = read_row(run_dir, live=False).status
    except (OSError, ValueError):
        status = UNFINISHED
    see = f"see it with `tui-train runs --runs-dir {Path(run_dir).resolve().parent}` (Enter replays it)"
    if status != UNFINISHED:
        return f"{run_dir}: the run has finished ({status}), nothing to attach to: {see}"
    return f"{run_dir}: not live ({why}) and it has no summary (killed, or not a run): {see}"


@app.command()
def attach(run_dir: RunDirArg = None, runs_dir: RunsDirOpt = Path("runs"), on_hangup: OnHangupOpt = "detach",
           no_notify_terminal: NoNotifyTerminalOpt = False) -> None:
    """Open the dashboard on a live run (the newest, or a list to pick from when several are live); d detaches again."""
    _terminal_notifications(no_notify_terminal)
    if on_hangup not in HANGUP_CHOICES:
        raise fail(f"--on-hangup {on_hangup!r} is not allowed (allowed: {', '.join(HANGUP_CHOICES)})")
    ptr, live = _live_run(run_dir, runs_dir, pick=True)
    target = ptr.run_dir if ptr is not None else None
    if not sys.stdout.isatty():
        raise fail("attach opens the dashboard and needs a terminal; scripts use `tui-train ctl [RUN_DIR] --events`")
    raise typer.Exit(_open_dashboard(target, live, runs_dir, on_hangup))


def _open_dashboard(target: Path | None, live: list | None, runs_dir: Path, on_hangup: str, opened: list | None = None) -> int:
    """The dashboard on the live run ``target`` (or the list ``live`` to pick from): ``attach`` and
    ``watch``. Each RemoteTrainer it makes is appended to ``opened`` (watch reads whether its run ended)."""
    from tui_train.core.live.remote import RemoteTrainer

    first = RemoteTrainer(attach=target) if target is not None else None
    if first is not None:
        first.prefetch()  # connect and read the history while Textual imports (bench j)

    def attach_factory(chosen: Path):
        nonlocal first
        trainer, first = (first, None) if first is not None and Path(chosen) == target else (RemoteTrainer(attach=chosen), first)
        if opened is not None:
            opened.append(trainer)
        return trainer

    return _run_tui(config=None, preset=None, runs_dir=runs_dir, attach=target, live=live, on_hangup=on_hangup,
                    attach_factory=attach_factory)


@app.command(context_settings={"allow_interspersed_args": False})
def watch(
    command: Annotated[list[str] | None, typer.Argument(
        help="The command that runs your script, after --: e.g. -- python train.py --lr 3e-4. The script calls "
             "tui_train.init itself.", metavar="COMMAND", show_default=False)] = None,
    headless: HeadlessOpt = False,
    on_hangup: OnHangupOpt = "detach",
    no_notify_terminal: NoNotifyTerminalOpt = False,
) -> None:
    """Run a script that calls tui_train.init with its run's dashboard open (d detaches: the script runs on), or print
    its progress lines with --headless; exits with the script's exit code."""
    _terminal_notifications(no_notify_terminal)
    if on_hangup not in HANGUP_CHOICES:
        raise fail(f"--on-hangup {on_hangup!r} is not allowed (allowed: {', '.join(HANGUP_CHOICES)})")
    if not command:
        raise fail("watch: give the command that runs your script after --, e.g. `tui-train watch -- python train.py`")
    from tui_train.tui import watch as W

    headless = headless or not sys.stdout.isatty()
    try:
        script = W.start(list(command))
    except W.StartError as e:
        raise fail(f"watch: {e}") from None
    try:
        raise typer.Exit(_watch(script, headless, on_hangup))
    except W.HungUp:  # the terminal is gone: the script runs on (or was told to stop, --on-hangup stop)
        raise typer.Exit(0 if on_hangup == "detach" else 130) from None
    finally:
        script.close()


def _watch(script, headless: bool, on_hangup: str) -> int:
    """``watch`` once the script has started: wait for its run, show it, wait for the script; its exit code."""
    import shlex

    from tui_train.tui import watch as W

    say(f"watch: {shlex.join(script.proc.args)} (pid {script.pid}); waiting for tui_train.init")
    with W.Forwarding(script, on_hangup, sys.stderr):
        announced = W.wait_for_announcement(script)
        if announced is None:
            code = W.shell_code(script.proc.wait())
            for line in W.tail(script.output):
                say(f"  {line}", err=True)
            say(W.ended_early(script, code), err=True)
            return code
        run_dir = Path(announced["run_dir"])
        if headless or _probe_live(run_dir) is None:  # a run over before the dashboard could open: its lines
            W.stream(run_dir, sys.stdout)
            return _script_ended(script, run_dir)
    opened: list = []
    code = _open_dashboard(run_dir, None, run_dir.parent, on_hangup, opened)
    if script.proc.poll() is None and not any(t.finished for t in opened):  # d: detached, the script runs on
        say(f"watch: the script runs on (pid {script.pid}); its output: {run_dir / 'output.log'}")
        return code
    with W.Forwarding(script, on_hangup, sys.stderr):
        return _script_ended(script, run_dir)


def _script_ended(script, run_dir: Path) -> int:
    """Wait for the script to exit, print what it wrote after its run ended (events stop at
    run.finish(); output.log keeps everything), return its exit code."""
    from tui_train.tui import watch as W

    code = W.wait_for_exit(script, lambda line: say(line, err=True))
    for line in W.after_the_run(script.output, run_dir):
        say(f"output: {line}")
    return code


def _probe_live(run_dir: Path):
    from tui_train.core.run.endpoint import probe

    return probe(run_dir)[0]


CTL_ACTIONS = {
    "pause": "pause", "resume": "resume", "lr VALUE": "set the base learning rate",
    "set KEY VALUE": "set a live hyperparameter (momentum, weight_decay, grad_clip, patience; lr too), or the run's length: "
                     "epochs or max_steps (--policy stretch|keep: the LR schedule; default the preset's schedule.on_length_change)",
    "save": "save a checkpoint", "validate": "validate now", "stop": "early stop (evaluate, save, end as early_stopped)",
    "interrupt": "save a checkpoint and end as interrupted (resume later with --resume)",
    "lr-find": "LR range test of the paused run on a copy (prints the suggestion; `lr VALUE` applies one)",
    "pause-at WHERE": "pause once at epoch=K, step=N, next-epoch, plateau=K or a metric condition ('val_accuracy >= 0.98')",
    "breakpoints": "list the run's pending breakpoints (any run)", "clear-breakpoints [ID]": "clear one pending breakpoint, or all",
    "wait --for EXPR | --status S": "block until a metric condition holds or the run has that status (any run): "
                                    "exit 0 it holds, 1 the run ended without it, 124 past --timeout",
    "note TEXT": "set the run's note (any run, live or finished; \"\" clears it)",
    "tag NAME...": "add tags to the run (any run)", "untag NAME...": "remove tags from the run (any run)",
}
"""What ``tui-train ctl`` can send (the form shown in help and errors)."""

NOTE_ACTIONS = ("note", "tag", "untag")
"""ctl words written to the run directory's notes.json (core.rundir.notes), not sent to a trainer."""


def _ctl_command(words: list[str]):
    """The command for ``ctl`` words such as ['lr', '3e-4']; one-line error (exit 2) otherwise."""
    from tui_train.core import commands as C

    allowed = " | ".join(CTL_ACTIONS)
    if not words:
        raise fail(f"ctl: say what to send ({allowed}), or --events")
    action, args = words[0], words[1:]
    if action in ("pause-at", "clear-breakpoints"):
        return _breakpoint_command(action, args)
    expected = {"pause": 0, "resume": 0, "save": 0, "validate": 0, "stop": 0, "interrupt": 0, "lr": 1, "set": 2, "lr-find": 0}
    if action not in expected:
        raise fail(f"ctl: unknown action {action!r} (allowed: {allowed})")
    if len(args) != expected[action]:
        form = next(k for k in CTL_ACTIONS if k.split()[0] == action)
        raise fail(f"ctl {action}: expected `ctl {form}`, got {' '.join(words)!r}")

    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise fail(f"ctl {action}: {text!r} is not a number") from None

    simple = {"pause": C.Pause, "resume": C.Resume, "save": C.SaveCheckpoint, "validate": C.Validate,
              "lr-find": C.FindLearningRate}
    if action in simple:
        return simple[action]()
    if action == "stop":
        return C.Stop("ctl")
    if action == "interrupt":
        return C.Interrupt("ctl")
    if action == "lr" or args[0] == "lr":
        return C.SetLearningRate(number(args[-1]))
    if args[0] in LENGTH_KEYS:
        return C.SetRunLength(args[0], whole(action, args[1]))
    return C.SetHyperparameter(args[0], number(args[1]))


LENGTH_KEYS = ("epochs", "max_steps")
"""``ctl set`` keys that change the run's length (core.length: a SetRunLength)."""


def whole(action: str, text: str) -> int:
    """A whole number typed for ``ctl ACTION``; one-line error (exit 2) otherwise."""
    try:
        return int(text)
    except ValueError:
        raise fail(f"ctl {action}: {text!r} is not a whole number") from None


def _breakpoint_command(action: str, args: list[str]):
    """``ctl pause-at WHERE...`` (the words joined: `pause-at val_accuracy '>=' 0.98` works unquoted
    too) or ``ctl clear-breakpoints [ID]``; the form is checked here (exit 2), the run checks the rest."""
    from tui_train.core import breakpoints
    from tui_train.core import commands as C

    if action == "clear-breakpoints":
        if len(args) > 1:
            raise fail(f"ctl clear-breakpoints: expected `ctl clear-breakpoints [ID]`, got {' '.join(args)!r}")
        return C.ClearBreakpoints(whole(action, args[0].lstrip("#")) if args else 0)
    spec = " ".join(args).strip()
    try:
        breakpoints.parse(spec, epoch=0)  # the form only: next-epoch is resolved by the run
    except breakpoints.BreakpointError as e:
        raise fail(f"ctl pause-at: {e}") from None
    return C.AddBreakpoint(spec)


@app.command()
def ctl(
    words: Annotated[list[str] | None, typer.Argument(
        help="[RUN_DIR] ACTION [VALUE...]; ACTION: " + " | ".join(CTL_ACTIONS) + ". RUN_DIR default: the newest live run.",
        show_default=False)] = None,
    events: Annotated[bool, typer.Option("--events", help="Stream the run's events as JSON lines until it ends. Default: off.")] = False,
    runs_dir: RunsDirOpt = Path("runs"),
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait for the acknowledgement (default 30), or "
                                                  "for wait's condition (default: no limit; then exit 124).", show_default=False)] = None,
    for_: Annotated[str | None, typer.Option("--for", help="wait: a metric condition in train.target's grammar, e.g. "
                                             "'val_accuracy >= 0.98'. Default: none.", show_default=False)] = None,
    status: Annotated[str | None, typer.Option("--status", help="wait: a status (paused, completed, ...). Default: none.",
                                               show_default=False)] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="set epochs|max_steps: stretch or keep the LR schedule. "
                                               "Default: the run's schedule.on_length_change.", show_default=False)] = None,
) -> None:
    """Send one command to a live run and print its acknowledgement (exit 0 applied, 1 rejected), or stream its events;
    wait for a condition (exit 0 held, 1 the run ended without it, 124 timeout) or list breakpoints, live or finished;
    note, tag and untag write the run directory's notes.json (any run, live or finished)."""
    words = list(words or [])
    run_dir = None
    if words and (Path(words[0]).is_dir() or "/" in words[0]):
        run_dir, words = Path(words[0]), words[1:]
    if events and words:
        raise fail("ctl: --events streams; send a command without it")
    if (for_ is not None or status is not None) and (not words or words[0] != "wait"):
        raise fail("ctl: --for and --status go with wait")
    if words and words[0] in ("wait", "breakpoints"):
        raise typer.Exit(_ctl_read(words, run_dir, runs_dir, for_, status, timeout))
    if words and words[0] in NOTE_ACTIONS:
        _ctl_notes(run_dir if run_dir is not None else _live_run(None, runs_dir)[0].run_dir, words)
        return
    command = None if events else _ctl_command(words)
    if policy is not None:
        from tui_train.core.commands import SetRunLength

        if not isinstance(command, SetRunLength):
            raise fail("ctl: --policy goes with `set epochs N` or `set max_steps N`")
        command = SetRunLength(command.key, command.value, policy)
    ptr, _ = _live_run(run_dir, runs_dir)
    from tui_train.core.run.endpoint import EndpointError

    try:
        raise typer.Exit(_stream(ptr.socket) if command is None else _send(ptr.socket, command, 30.0 if timeout is None else timeout))
    except EndpointError as e:
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _ctl_notes(run_dir: Path, words: list[str]) -> None:
    """``ctl note TEXT`` / ``tag NAME...`` / ``untag NAME...``: write the run's notes.json and say
    what it now holds; a folder that is not a run, a bad tag: one line, exit 2."""
    from tui_train.core.rundir import notes as N

    action, args = words[0], words[1:]
    if not args:
        raise fail(f"ctl {action}: expected `ctl {next(k for k in CTL_ACTIONS if k.split()[0] == action)}`")
    try:
        if action == "note":
            done = N.write_notes(run_dir, note=" ".join(args))
        else:
            done = (N.add_tags if action == "tag" else N.remove_tags)(run_dir, args)
    except N.NotesError as e:
        raise fail(f"ctl {action}: {e}") from None
    except OSError as e:
        raise fail(f"ctl {action}: cannot write {Path(run_dir) / N.NOTES_FILE}: {e.strerror or e}") from None
    if action == "note":
        say(f"{run_dir}: note {'set' if done.note else 'cleared'}")
    else:
        say(f"{run_dir}: tags: {', '.join(done.tags) if done.tags else '(none)'}")


def _send(socket_path: Path, command, timeout: float) -> int:
    """Send ``command``, print its acknowledgement; 0 applied, 1 rejected or no answer, 2 refused as malformed."""
    import time

    from tui_train.core import events as E
    from tui_train.core.run.endpoint import Connection

    conn = Connection(socket_path, viewer="ctl")
    try:
        request = conn.send(command)
        deadline = time.monotonic() + timeout
        for event, _, msg in conn.events(timeout=0.2):
            if event is None and msg.get("type") == "error" and msg.get("request") in (request, None):
                say(f"tui-train: error: the trainer refused the message: {msg.get('reason', '')}", err=True)
                return EXIT_BAD_INPUT
            if isinstance(event, E.ValidationMetrics) and command.name == "Validate":
                typer.echo("validation: " + json.dumps(event.metrics))
            if isinstance(event, E.CommandApplied | E.CommandRejected) and event.origin == conn.viewer_id:
                if isinstance(event, E.CommandApplied):
                    say(f"{event.command}: {event.detail} (step {event.step})")
                    return 0
                say(f"{event.command} rejected: {event.reason}", err=True)
                return 1
            if isinstance(event, E.RunFinished | E.RunFailed):
                say(f"tui-train: the run ended before {command.name} applied", err=True)
                return 1
            if time.monotonic() > deadline:
                say(f"tui-train: no acknowledgement of {command.name} within {timeout:g} s "
                           "(it applies at the next step boundary; is a step very long?)", err=True)
                return 1
        say(f"tui-train: the trainer closed the connection before acknowledging {command.name}", err=True)
        return 1
    finally:
        conn.close()


def _ctl_read(words: list[str], run_dir: Path | None, runs_dir: Path, expression: str | None, status: str | None,
              timeout: float | None) -> int:
    """``ctl [RUN] wait --for EXPR | --status S [--timeout T]`` and ``ctl [RUN] breakpoints``: any run,
    live or finished (its files first; RUN may also follow the action). Bad input: one line, exit 2."""
    from tui_train.core.rundir import waiting

    action, rest = words[0], words[1:]
    if rest and run_dir is None and len(rest) == 1:
        run_dir, rest = Path(rest[0]), []
    if rest:
        raise fail(f"ctl {action}: unexpected {' '.join(rest)!r}")
    if run_dir is not None and not (run_dir / "events.jsonl").is_file():
        raise fail(f"{run_dir}: not a run directory (no events.jsonl)")
    where = run_dir if run_dir is not None else _live_run(None, runs_dir)[0].run_dir
    if action == "breakpoints":
        pending = waiting.read_breakpoints(where)
        say("\n".join(f"#{b['id']} {b['spec']}" for b in pending) if pending else "no breakpoints pending")
        return 0
    try:
        condition = waiting.Condition.parse(expression, status)
    except ValueError as e:
        raise fail(str(e)) from None
    if timeout is not None and not timeout >= 0:
        raise fail(f"ctl wait --timeout {timeout:g}: seconds >= 0")
    code, line = waiting.wait(where, condition, timeout)
    say(line, err=code != waiting.HELD)
    return code


def _stream(socket_path: Path) -> int:
    """Print every live event as a JSON line (with its seq) until the run ends."""
    from tui_train.core import events as E
    from tui_train.core.run.endpoint import Connection

    conn = Connection(socket_path, viewer="ctl")
    try:
        for event, seq, _ in conn.events(timeout=0.5):
            if event is None:
                continue
            try:
                sys.stdout.write(json.dumps({**E.to_json(event), "seq": seq}, allow_nan=True) + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, OSError):
                return 0  # the reader went away (e.g. | head)
            if isinstance(event, E.RunFinished | E.RunFailed):
                return 0
        return 0
    finally:
        conn.close()


@presets_app.callback()
def presets(ctx: typer.Context, presets_dir: PresetsDirOpt = None) -> None:
    """List the presets (bundled, then *.toml in the working directory and --presets-dir) with their descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from tui_train.core.config import DEFAULT_PRESET, ConfigError, list_presets, read_toml

    found = list_presets(_presets_dirs(presets_dir))
    width = max((len(n) for n in found), default=0)
    for name, path in found.items():
        try:
            desc = str(read_toml(path).get("description", ""))
        except ConfigError as e:
            desc = f"(unreadable: {e})"
        mark = " (default)" if name == DEFAULT_PRESET else ""
        say(f"{name:<{width}}  {desc}{mark}")


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name or path to a .toml file.")],
    presets_dir: PresetsDirOpt = None,
) -> None:
    """Print a preset's TOML."""
    from tui_train.core.config import ConfigError, resolve_preset

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
    from tui_train.core.config import ConfigError
    from tui_train.core.train.checkpoint import CheckpointError
    from tui_train.core.train.data import DataError
    from tui_train.core.train.evaluation import evaluate_checkpoint

    try:
        if checkpoint.suffix.lower() in (".pt2", ".safetensors"):
            from tui_train.core.train.evaluation import evaluate_export

            result = evaluate_export(checkpoint, data_dir=str(data_dir) if data_dir else None, device=device or "auto")
        else:
            result = evaluate_checkpoint(checkpoint, data_dir=str(data_dir) if data_dir else None, device=device or "auto")
    except (ConfigError, DataError, CheckpointError) as e:
        raise fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    say(f"checkpoint: {result['checkpoint']}")
    say(f"preset: {result['preset']}  step {result['step']}  epoch {result['epoch']}  ({result['test_size']} test samples)")
    for k, v in result["metrics"].items():
        say(f"  {k:<10} {v:.4f}")


RUNS_COLUMNS = ("status", "preset", "sweep", "started", "duration", "epochs", "best", "test", "tags", "note", "lr", "batch",
                "optimizer", "schedule", "interventions", "parent", "run")
"""The columns of the plain `tui-train runs` table."""

NOTE_WIDTH = 24
"""Characters of a note the runs table shows (its first line; all of it: ``--json``)."""


def runs_table_row(row) -> list[str]:
    """One run as the plain table's cells (also used by the Runs screen's tests)."""
    import time as _time

    from tui_train.tui import format as fmt

    hp = row.hyperparameters
    started = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(row.started)) if row.started else "-"
    best = row.best.get("value")
    best_txt = f"{row.best.get('metric', '')} {fmt.num(best)}" if isinstance(best, int | float) else "-"
    test = row.test_metric
    epochs = f"{row.epochs if row.epochs is not None else '-'}/{row.epochs_planned if row.epochs_planned is not None else '?'}"
    status = ("● " if row.live else "") + row.status
    note = "(notes.json unreadable)" if row.notes_error else fmt.first_line(row.note, NOTE_WIDTH)
    return [status, row.preset, fmt.trial(row.sweep_name, row.trial), started, fmt.duration(row.duration), epochs, best_txt,
            fmt.num(test) if test is not None else "-", ",".join(row.tags), note,
            fmt.lr(hp.get("lr")) if isinstance(hp.get("lr"), int | float) else "-", str(hp.get("batch_size") or "-"),
            str(hp.get("optimizer") or "-"), str(hp.get("schedule") or "-"), str(row.interventions),
            Path(row.parent).name if row.parent else "", row.name]


@app.command()
def runs(
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of runs for scripts. Default: a table.")] = False,
    sort: Annotated[str, typer.Option("--sort", help="Sort by a column: started, status, preset, sweep, duration, epochs, best, "
                                      "test, lr, batch_size, optimizer, schedule, interventions, parent, tags, note, name, "
                                      "time_to_target. Default: started.")] = "started",
    ascending: Annotated[bool, typer.Option("--ascending", help="Smallest first. Default: largest (newest) first.")] = False,
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", "-f", metavar="EXPR", show_default=False,
        help="Only the runs matching EXPR: words that must all hold, e.g. 'lr>=1e-3 optimizer=adam status=completed "
             "best>0.9 sweep=NAME tag=baseline optim.lr<0.1'; a plain word: the runs with it somewhere (repeatable; "
             "prints the table, or --json). Default: every run.")] = None,
) -> None:
    """List the runs under --runs-dir, live ones first: the Runs screen on a terminal, a table (or --json) otherwise."""
    from tui_train.core.rundir.filters import FilterError, parse_filter, search_text
    from tui_train.core.rundir.runs import SORT_KEYS, list_runs

    if sort not in SORT_KEYS:
        raise fail(f"--sort {sort!r} is not a column (allowed: {', '.join(SORT_KEYS)})")
    try:
        wanted = parse_filter(filters or [])
    except FilterError as e:
        raise fail(f"--filter: {e}") from None
    if runs_dir.exists() and not runs_dir.is_dir():
        raise fail(f"--runs-dir {runs_dir}: not a folder")
    rows = list_runs(runs_dir, sort=sort, reverse=not ascending)
    if wanted:  # a plain word looks in what the table shows, and in the whole note, the tags and a trial's parameters
        rows = wanted.apply(rows, lambda r: " ".join(runs_table_row(r)).casefold() + " " + search_text(r))
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if sys.stdout.isatty() and os.environ.get("TUI_TRAIN_RUNS_PLAIN", "") in ("", "0"):  # the screen, filtered as asked
        raise typer.Exit(_run_tui(config=None, preset=None, runs_dir=runs_dir, runs_screen=True,
                                  runs_query=" ".join(filters or [])))
    if not rows:
        say(f"no run under {runs_dir} matches the filter" if wanted else f"no runs under {runs_dir}")
        return
    cells = [list(RUNS_COLUMNS)] + [runs_table_row(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(RUNS_COLUMNS))]
    for c in cells:
        say("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())


@app.command()
def export(
    checkpoint: CheckpointArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Weights file: .safetensors or .pt (a plain state dict), or .pt2 "
                                             "(a torch.export program).",
                                             show_default=False)] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="The run's metrics as CSV, one row per logged step (Lightning's "
                                             "CSVLogger shape); CHECKPOINT is then the run directory.", show_default=False)] = None,
    tensorboard: Annotated[Path | None, typer.Option("--tensorboard", help="The run's metrics as TensorBoard event files in "
                                                     "this (empty) folder; needs tensorboardX.", show_default=False)] = None,
) -> None:
    """Write the model weights alone (--out), or a run's metrics for other tools (--csv, --tensorboard). One is required."""
    from tui_train.core.errors import first_line

    if out is None and csv is None and tensorboard is None:
        raise fail("export: say what to write: --out FILE (weights), --csv FILE or --tensorboard DIR (metrics)")
    if csv is not None or tensorboard is not None:
        from tui_train.core.rundir.metrics_export import ExportError, export_csv, export_tensorboard
        from tui_train.core.train.checkpoint import run_dir_of

        run_dir = checkpoint if checkpoint.is_dir() else run_dir_of(checkpoint)
        try:
            if csv is not None:
                say(f"exported {export_csv(run_dir, csv)} rows of {run_dir} to {csv}")
            if tensorboard is not None:
                say(f"exported {export_tensorboard(run_dir, tensorboard)} scalars of {run_dir} to {tensorboard}")
        except (ExportError, OSError) as e:
            raise fail(first_line(e)) from None
    if out is not None:
        from tui_train.core.config import ConfigError
        from tui_train.core.train.checkpoint import CheckpointError, export_weights, resolve

        try:
            src = resolve(checkpoint)
            if out.suffix.lower() == ".pt2":
                from tui_train.core.train.program import export_program

                say(f"exported the model of {src} as a program (torch.export) to {export_program(src, out)}")
                return
            path, n = export_weights(src, out)
        except (CheckpointError, ConfigError, OSError) as e:
            raise fail(first_line(e)) from None
        say(f"exported {n} tensors from {src} to {path}")


def main() -> None:
    """The console script: run the app, then leave without interpreter finalization.

    Everything a run must keep is on disk by then (atomic checkpoints, summary.json, flushed
    logs). Finalization after a signal-interrupted run intermittently aborted in a C++ destructor
    of the torch runtime ("terminate called without an active exception", exit -6 instead of
    130; tests/e2e/test_headless_signals.py caught it in CI), so the exit code is delivered with
    os._exit after flushing stdout and stderr.
    """
    from tui_train.core.errors import StartInterrupted

    code: int | str | None = 0
    try:
        app()
    except SystemExit as e:
        code = e.code
    except StartInterrupted as e:  # a signal while starting (catch_startup_signals): one line, no traceback
        sys.stderr.write(f"tui-train: {signal.Signals(e.signum).name}: stopped while starting, before training began\n")
        code = 130
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


def _register_sweep() -> None:
    from tui_train.tui import sweep_cli

    sweep_cli.register(app, fail=fail, say=say, overrides_of=lambda set_: _overrides(set_, None, None))


_register_sweep()

if __name__ == "__main__":  # pragma: no cover
    main()
