"""SLURM and preemption (issue 25 item 5): the signal that saves a checkpoint and ends a run
``preempted``, the job's requeue, and finding a run again for ``tui-train run --resume auto``.
Plain Python: no torch.

A cluster that is about to take a job's nodes back (its time limit, a preemption) can warn the job
with a signal: ``#SBATCH --signal=B:USR1@90`` sends SIGUSR1 to the batch shell 90 s ahead (a
script that ``exec``s ``tui-train run`` makes the run that process). The run's *save signal*
(``--signal-save``; SIGUSR1 by default inside a SLURM job, none outside) stops it at the next step
boundary, as SIGTERM does, but it ends ``preempted`` (core.status.EXIT_CODES), which is not a
failure and not the run's end: a resume goes on. Then, inside a SLURM job, ``scontrol requeue
<job>`` puts the job back in the queue (the checkpoint is already on disk; a missing or failing
scontrol is one line); the restarted job runs the same command, whose ``--resume auto`` finds the
run again by the job id that :data:`RECORD` keeps (a requeued job keeps its id), or by its
``--run-name`` folder.

Settings reach every process of a run (the TUI's trainer process, torchrun's workers) through the
environment (:data:`SIGNAL_ENV`, :data:`REQUEUE_ENV`), which ``tui-train run`` sets once it has
checked its options.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tui_train.core.run.checkpoints import newest, write_atomic

SIGNAL_ENV = "TUI_TRAIN_SIGNAL_SAVE"
"""The run's save signal, by name ('USR1'), or 'none': ``tui-train run --signal-save`` sets it for
the processes it starts. Unset: SIGUSR1 inside a SLURM job (``SLURM_JOB_ID`` set), else none."""

REQUEUE_ENV = "TUI_TRAIN_REQUEUE"
"""'0': this process never runs ``scontrol requeue`` (``--no-requeue``; a torchrun launcher that
waits for its group sets it for the workers and requeues once the group has ended)."""

SIGNALS = ("USR1", "USR2", "TERM", "HUP", "INT", "ALRM", "XCPU")
"""What ``--signal-save`` accepts (with or without ``SIG``, or the number): signals a scheduler
sends ahead of taking the nodes back. With TERM, HUP or INT that signal ends the run ``preempted``
instead of ``interrupted`` (then a ``scancel``'s SIGTERM requeues the job too)."""

RECORD = "slurm.json"
"""``<run_dir>/slurm.json``: ``{"jobs": [{job_id, restart_count, node, started}, ...]}``, one entry
each time a SLURM job started or resumed the run (rank 0 writes it, atomically): how
``--resume auto`` finds the run again."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A ``--run-name``: one folder name (letters, digits, '.', '_', '-'; at most 128 characters)."""

REQUEUE_TIMEOUT = 30.0
"""Seconds ``scontrol requeue`` may take before the run says it did not answer."""


ASKED = threading.Event()
"""The save signal came while the command was still starting (:func:`catch_early`): the run
stops as ``preempted`` as soon as it has begun (core.run.headless)."""


def catch_early(sig: signal.Signals | None) -> None:
    """Until a run takes the save signal over, remember it in :data:`ASKED` instead of dying of
    it (SIGUSR1's default action ends a process) or losing it: importing torch, loading the data,
    a torchrun worker not yet training. Also where it was ignored (torchrun's workers inherit
    that from :func:`core.live.launch.ignoring`). Main thread only; no-op without a signal."""
    if sig is not None and threading.current_thread() is threading.main_thread():
        signal.signal(sig, lambda signum, frame: ASKED.set())


class Stop(threading.Event):
    """A run's stop event that knows why it was set: :meth:`preempt` (the save signal) ends the run
    ``preempted``, a plain :meth:`set` (SIGTERM, SIGHUP, Ctrl+C) ``interrupted``
    (core.run.place.RunPlace.end_asked reads :attr:`preempted`)."""

    preempted = False
    """The save signal set it."""

    def preempt(self) -> None:
        """Stop the run as preempted."""
        self.preempted = True
        self.set()


def parse_signal(text: str) -> signal.Signals | None:
    """The signal ``text`` names ('USR1', 'SIGUSR1', '10'), or None for 'none'/'off'. ValueError with
    one line for anything else."""
    word = str(text).strip().upper()
    if word in ("NONE", "OFF", ""):
        return None
    try:
        sig = signal.Signals(int(word)) if word.isdigit() else getattr(signal, "SIG" + word.removeprefix("SIG"), None)
    except ValueError:
        sig = None
    if not isinstance(sig, signal.Signals) or sig.name.removeprefix("SIG") not in SIGNALS:
        raise ValueError(f"{text!r} is not a signal it can save on (allowed: {', '.join(SIGNALS)}, none)")
    return sig


def save_signal(env: Mapping[str, str] | None = None) -> signal.Signals | None:
    """The run's save signal: :data:`SIGNAL_ENV`'s (a bad value counts as none: ``tui-train run``
    refuses it first), else SIGUSR1 inside a SLURM job, else None."""
    env = os.environ if env is None else env
    given = env.get(SIGNAL_ENV)
    if given is None:
        return signal.SIGUSR1 if env.get("SLURM_JOB_ID") else None
    try:
        return parse_signal(given)
    except ValueError:
        return None


def job_id(env: Mapping[str, str] | None = None) -> str:
    """This SLURM job's id as scontrol takes it: ``<array job>_<task>`` for a task of an array, else
    ``SLURM_JOB_ID``; '' outside SLURM."""
    env = os.environ if env is None else env
    array, task = env.get("SLURM_ARRAY_JOB_ID", "").strip(), env.get("SLURM_ARRAY_TASK_ID", "").strip()
    if array and task:
        return f"{array}_{task}"
    return env.get("SLURM_JOB_ID", "").strip()


def restart_count(env: Mapping[str, str] | None = None) -> int:
    """``SLURM_RESTART_COUNT``: how many times SLURM restarted (requeued) this job (0 when unset)."""
    env = os.environ if env is None else env
    value = env.get("SLURM_RESTART_COUNT", "").strip()
    return int(value) if value.isdigit() else 0


def requeue(env: Mapping[str, str] | None = None, timeout: float = REQUEUE_TIMEOUT) -> str:
    """After a ``preempted`` end: ``scontrol requeue <job>`` when this process may (inside a SLURM
    job, :data:`REQUEUE_ENV` not '0'). Returns the one line to say ('' when nothing was asked).
    A missing, failing or silent scontrol is that line, never an exception: the checkpoint is saved
    either way."""
    env = os.environ if env is None else env
    job = job_id(env)
    if not job or env.get(REQUEUE_ENV, "") == "0":
        return ""
    exe = shutil.which("scontrol", path=env.get("PATH"))
    if exe is None:
        return (f"scontrol not found: SLURM job {job} was not requeued (the checkpoint is saved: "
                f"submit the job again; --resume auto goes on from it)")
    try:
        done = subprocess.run([exe, "requeue", job], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=dict(env))
    except (OSError, subprocess.SubprocessError) as e:
        return f"scontrol requeue {job} failed ({type(e).__name__}: {e}): the job was not requeued (the checkpoint is saved)"
    if done.returncode != 0:
        said = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        why = said[-1] if said else f"exit code {done.returncode}"
        return f"scontrol requeue {job} failed ({why}): the job was not requeued (the checkpoint is saved)"
    return f"requeued SLURM job {job} (scontrol requeue {job}): it starts again and --resume auto goes on"


# ---------------------------------------------------------------------- the record and --resume auto

def jobs_of(run_dir: Path) -> list[dict]:
    """The entries of ``run_dir``'s :data:`RECORD` ([] when it has none or it cannot be read)."""
    try:
        data = json.loads((Path(run_dir) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    jobs = data.get("jobs") if isinstance(data, dict) else None
    return [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []


def remember(run_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """Add this SLURM job to ``run_dir``'s :data:`RECORD` (rank 0, when the run starts or resumes).
    Returns '' when written or outside SLURM, else why not in one line (``--resume auto`` will not
    find the run by this job's id)."""
    env = os.environ if env is None else env
    job = job_id(env)
    if not job:
        return ""
    entry = {"job_id": job, "restart_count": restart_count(env), "node": env.get("SLURMD_NODENAME", ""),
             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    data = json.dumps({"jobs": jobs_of(run_dir) + [entry]}, indent=1).encode()
    try:
        write_atomic(Path(run_dir) / RECORD, lambda f: f.write(data))
    except OSError as e:
        return (f"cannot write {Path(run_dir) / RECORD} ({e.strerror or type(e).__name__}): "
                f"--resume auto will not find this run by SLURM job {job}")
    return ""


def has_checkpoint(run_dir: Path) -> bool:
    """``run_dir`` holds a complete checkpoint (what a resume needs)."""
    folder = Path(run_dir) / "checkpoints"
    return folder.is_dir() and newest(folder) is not None


def find_job_run(runs_dir: Path, job: str) -> Path | None:
    """The run under ``runs_dir`` that SLURM job ``job`` started or resumed (its :data:`RECORD`) and
    that holds a checkpoint: the one with the newest checkpoint when there are several."""
    found = []
    try:
        folders = [p for p in Path(runs_dir).iterdir() if (p / RECORD).is_file()]
    except OSError:
        return None
    for folder in folders:
        if any(j.get("job_id") == job for j in jobs_of(folder)) and has_checkpoint(folder):
            found.append((newest(folder / "checkpoints").stat().st_mtime_ns, folder))
    return max(found)[1] if found else None


def check_run_name(name: str) -> str:
    """Why ``name`` cannot be a ``--run-name`` ('' when it can)."""
    if NAME.fullmatch(name) and name not in (".", ".."):
        return ""
    return f"{name!r} is not a folder name (letters, digits, '.', '_' and '-', at most 128 characters, not starting with '.', '_' or '-')"


def resume_auto(runs_dir: Path, run_name: str | None, env: Mapping[str, str] | None = None) -> tuple[Path | None, Path | None, str]:
    """What ``--resume auto`` does: (the run directory to resume, or None; the folder a new run goes
    to, or None for ``<stamp>-<preset>``; the one line that says which). A ``run_name`` finds
    ``<runs_dir>/<run_name>``; else this SLURM job's id finds the run that recorded it; else, or
    when no such run holds a checkpoint, a new run starts."""
    env = os.environ if env is None else env
    runs_dir = Path(runs_dir)
    job = job_id(env)
    if run_name:
        folder = runs_dir / run_name
        if has_checkpoint(folder):
            return folder, None, f"--resume auto: continuing {folder} (run name {run_name}) from its newest checkpoint"
        if folder.exists():
            return None, folder, f"--resume auto: {folder} holds no checkpoint yet: starting the run there afresh"
        return None, folder, f"--resume auto: no run named {run_name} under {runs_dir}: starting a new one there"
    if not job:
        return None, None, "--resume auto: no SLURM job (SLURM_JOB_ID) and no --run-name to find a run by: starting a new one"
    found = find_job_run(runs_dir, job)
    if found is None:
        return None, None, f"--resume auto: no run of SLURM job {job} under {runs_dir}: starting a new one"
    return found, None, (f"--resume auto: continuing {found} (SLURM job {job}, restart {restart_count(env)}) "
                         f"from its newest checkpoint")
