"""Starting a run over several processes with torchrun, and what a torchrun worker needs to know.

``tui-train run PRESET --nproc-per-node N`` runs ``python -m torch.distributed.run ... -m tui.cli
run PRESET --headless`` (PyTorch's own elastic launcher, nothing home-made). The launcher picks
the run directory first and hands it to every worker (``TUI_TRAIN_RUN_DIR``), so that a group
torchrun restarts (``--max-restarts``) continues the same run from its newest checkpoint. A
group started by hand with ``torchrun`` finds its run directory again through a pointer file
``<runs_dir>/.torchrun-<TORCHELASTIC_RUN_ID>`` that rank 0 writes.

Restarts (``--max-restarts K``) on one node are :func:`supervise`'s: a failed group is started
again as a fresh torchrun (a new agent, store and ports) that resumes the run's newest
checkpoint. torchrun's own in-place restart was seen to hang on a loaded machine (the restarted
group's gloo connect was refused, then waited for minutes; pytorch/pytorch#167288 reports the
same with nccl). Several nodes need torchrun's elastic restart, so ``--max-restarts`` is handed to
torchrun there.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tui_train.core.run import slurm

RESTART_ENV = "TUI_TRAIN_RESTART_COUNT"
"""How many times :func:`supervise` started a fresh torchrun for this run after a failed group
(a worker adds it to torchrun's own TORCHELASTIC_RESTART_COUNT: :func:`core.train.distributed.from_env`)."""

RUN_DIR_ENV = "TUI_TRAIN_RUN_DIR"
"""The run directory a torchrun worker trains into (set by the launcher)."""

PASS_THROUGH = ("nnodes", "node_rank", "rdzv_endpoint", "rdzv_backend", "rdzv_id", "max_restarts", "master_port")
"""Launcher options handed to torchrun as they are (``--nnodes 2`` ...)."""


def torchrun_command(nproc: int, worker_args: list[str], options: dict) -> list[str]:
    """The torchrun command line for ``nproc`` workers per node running ``tui.cli run <worker_args>``.
    A single node without a rendezvous endpoint runs ``--standalone``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    single = is_single_node(options)
    if single:
        cmd.append("--standalone")
    for key in PASS_THROUGH:
        if single and key == "max_restarts":
            continue  # one node: supervise() restarts a fresh torchrun instead
        value = options.get(key)
        if value not in (None, ""):
            cmd.append(f"--{key.replace('_', '-')}={value}")
    return cmd + ["-m", "tui_train.tui.cli", "run", *worker_args, "--headless"]


def is_single_node(options: dict) -> bool:
    """One node, no rendezvous endpoint: ``--standalone``, and restarts are :func:`supervise`'s."""
    return int(options.get("nnodes") or 1) == 1 and not options.get("rdzv_endpoint")


def pointer_file(runs_dir: Path) -> Path | None:
    """Where a hand-started torchrun group keeps its run directory (None outside torchrun)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if not run_id:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return Path(runs_dir) / f".torchrun-{safe}"


def worker_run_dir(runs_dir: Path) -> Path | None:
    """The run directory this torchrun worker's group trains into, when it is already decided
    (by the launcher, or by rank 0 of a group torchrun restarted); None: rank 0 makes a new one."""
    given = os.environ.get(RUN_DIR_ENV)
    if given:
        return Path(given)
    ptr = pointer_file(runs_dir)
    if ptr is not None and ptr.is_file():
        text = ptr.read_text(encoding="utf-8").strip()
        return Path(text) if text else None
    return None


def remember_run_dir(runs_dir: Path, run_dir: Path) -> None:
    """Rank 0 of a hand-started group: write the pointer, so that a restarted group finds the run."""
    ptr = pointer_file(runs_dir)
    if ptr is None or os.environ.get(RUN_DIR_ENV):
        return
    tmp = ptr.with_name(ptr.name + ".tmp")
    tmp.write_text(str(Path(run_dir).resolve()) + "\n", encoding="utf-8")
    os.replace(tmp, ptr)


def forget_run_dir(runs_dir: Path) -> None:
    """Rank 0, once the run has ended for good: the pointer is not needed any more."""
    ptr = pointer_file(runs_dir)
    if ptr is not None and not os.environ.get(RUN_DIR_ENV):
        ptr.unlink(missing_ok=True)


def start_group(cmd: list[str], run_dir: Path, *, detached: bool, log_name: str = "launcher.log",
                restarts: int = 0) -> subprocess.Popen:
    """Start torchrun with ``run_dir`` for its workers. ``detached``: in its own session with its
    output in ``<run_dir>/<log_name>`` (a viewer attaches to rank 0's endpoint; a hang-up of the
    terminal does not reach the run); otherwise it prints to this terminal, its stderr going to
    the log (torchrun reports a worker's failure with a traceback: the run's one line says it).
    ``restarts`` > 0: the process started is :func:`supervise` (``python -m core.live.launch``), which
    runs ``cmd`` and starts it again, up to that many times, after a failed group."""
    env = {**os.environ, RUN_DIR_ENV: str(run_dir), "PYTHONUNBUFFERED": "1"}
    if not detached:  # this launcher waits for the group: it requeues a preempted SLURM job, not rank 0
        env[slurm.REQUEUE_ENV] = "0"
    if restarts > 0:
        cmd = [sys.executable, "-m", "tui_train.core.live.launch", "--restarts", str(restarts), "--", *cmd]
    cmd = ignoring(slurm.save_signal(), cmd)
    log = open(run_dir / log_name, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        if detached:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        # its own process group: a Ctrl+C in the terminal reaches this launcher only, which hands
        # torchrun one signal (torchrun would pass a second one on, and a second Ctrl+C aborts)
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log, env=env, process_group=0)
    finally:
        log.close()


IGNORE_AND_EXEC = "import os, signal, sys; signal.signal(int(sys.argv[1]), signal.SIG_IGN); os.execv(sys.argv[2], sys.argv[2:])"
"""Ignore a signal, then become the command (same pid): an ignored signal stays ignored across exec."""


def ignoring(save: signal.Signals | None, cmd: list[str]) -> list[str]:
    """``cmd`` started with the save signal ignored: torchrun (and the supervisor) must not die of
    it (SIGUSR1's default action ends a process) when a scheduler signals every process of the
    job; the workers take it over (core.run.headless) and the launcher hands it to them itself
    (:func:`signal_workers`). No ``preexec_fn``: a TUI that starts a group has threads."""
    if save is None:
        return cmd
    return [sys.executable, "-I", "-c", IGNORE_AND_EXEC, str(int(save)), *cmd]


def _status(run_dir: Path) -> str:
    """The run's status in its summary.json ('' when there is none or it cannot be read)."""
    import json

    try:
        return str(json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8")).get("status", ""))
    except (OSError, ValueError, AttributeError):
        return ""


RESTARTABLE = ("failed", "")
"""Statuses a group that exited non-zero leaves when it failed (a rank died: rank 0 says
``failed``; rank 0 itself killed writes no summary). A run that ended on purpose (completed,
stopped, early_stopped, interrupted, preempted: its nodes are being taken back) is never
restarted, nor one refused at start (bad input: :func:`_started`)."""


def _started(run_dir: Path) -> bool:
    """The group got as far as training: rank 0 opened the run's log (events.jsonl). A worker
    that refused the run at start (a ConfigError: exit 2, which torchrun reports as 1) did not."""
    return (Path(run_dir) / "events.jsonl").is_file()


def supervise(cmd: list[str], run_dir: Path, restarts: int, *, out=None) -> int:
    """Run torchrun ``cmd`` and start it again after a failed group, at most ``restarts`` times;
    the new group resumes the run's newest checkpoint (its workers see :data:`RESTART_ENV`).
    SIGINT/SIGTERM/SIGHUP are handed to the running torchrun (once) and end the supervision: a run
    stopped on purpose is not restarted, and a signal between two groups starts none (exit 130).
    A group refused at start (bad input, :func:`_started`) is final too. Returns the last
    torchrun's exit code."""
    out = out or sys.stdout
    stopping: list[int] = []
    current: list[subprocess.Popen] = []  # the torchrun running now (the handlers forward to it)
    sent: list[subprocess.Popen] = []  # the ones a signal was handed to (once each)
    attempt = 0
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.getsignal(sig) for sig in sigs}

    def forward(signum, frame):
        stopping.append(signum)
        if current and current[-1].poll() is None and current[-1] not in sent:
            sent.append(current[-1])
            current[-1].send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for sig in sigs:  # before the first start, and never re-installed: no window without them
        signal.signal(sig, forward)
    try:
        while True:
            if stopping:  # a signal between two groups: do not start another
                return 130
            env = {**os.environ, RESTART_ENV: str(attempt)}
            current[:] = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env)]
            if stopping and current[-1] not in sent:  # it came while the group started: hand it on now
                forward(stopping[-1], None)
            code = current[-1].wait()
            if (code == 0 or code == 2 or stopping or attempt >= restarts or _status(run_dir) not in RESTARTABLE
                    or not _started(run_dir)):
                return code
            attempt += 1
            # the supervisor is a process of its own (no Textual): its output is the terminal or launcher.log
            out.write(f"tui-train: the group failed (exit code {code}); restart {attempt} of {restarts}: a fresh torchrun "
                      f"resumes the newest checkpoint\n")
            out.flush()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.live.launch --restarts K -- TORCHRUN_CMD...``: :func:`supervise` as a process of
    its own (a run with a TUI: the supervisor is detached and outlives the terminal). The run
    directory is :data:`RUN_DIR_ENV`'s."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "--restarts" or args[2] != "--" or not os.environ.get(RUN_DIR_ENV):
        sys.stderr.write("usage: TUI_TRAIN_RUN_DIR=DIR python -m tui_train.core.live.launch --restarts K -- TORCHRUN_COMMAND...\n")
        return 2
    try:
        restarts = int(args[1])
    except ValueError:
        sys.stderr.write(f"tui_train.core.live.launch: --restarts expects a whole number, got {args[1]!r}\n")
        return 2
    return supervise(args[3:], Path(os.environ[RUN_DIR_ENV]), restarts)


def wait_for_endpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 300.0) -> str:
    """Wait until rank 0 hosts the run's endpoint; '' when it does, else why not (one line)."""
    from tui_train.core.run.endpoint import POINTER

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / POINTER).is_file():
            return ""
        code = proc.poll()
        if code is not None:
            return f"the training processes ended before the run started (exit code {code}): {last_line(run_dir)}"
        time.sleep(0.05)
    return f"the training processes did not start within {timeout:.0f} s: see {run_dir / 'launcher.log'}"


RANK_PREFIX = re.compile(r"^\[(?:rank|default)\d*\]:\s*")
"""torchrun's per-rank line prefix (``[rank0]: ``), taken off before reading a worker's line."""


def last_line(run_dir: Path, log_name: str = "launcher.log") -> str:
    """The most telling line of the group's log: a worker's one-line error; else the root cause
    of torchrun's report (which rank, and its exit code or signal: the report's last line is a
    row of '='); else the last line that is not a rule."""
    try:
        text = (run_dir / log_name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"see {run_dir / log_name}"
    lines = [RANK_PREFIX.sub("", ln.strip()).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in reversed(lines):
        if ln.startswith("tui-train: "):
            return ln.removeprefix("tui-train: ")
    cause = _root_cause(lines)
    if cause:
        return cause
    words = [ln for ln in lines if set(ln) - set("=-_* ")]  # a rule (=====, -----) says nothing
    return words[-1] if words else f"see {run_dir / log_name}"


def _root_cause(lines: list[str]) -> str:
    """'rank 1 (local_rank: 1): Signal 9 (SIGKILL) received by PID 4242' from the last "Root Cause"
    block of torchrun's error report ('' when there is none)."""
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Root Cause")]
    if not starts:
        return ""
    fields: dict[str, str] = {}
    for ln in lines[starts[-1] + 1:]:
        if not set(ln) - set("="):
            break
        key, sep, value = ln.partition(":")
        if sep and key.strip() in ("rank", "exitcode", "traceback", "error_file"):
            fields.setdefault(key.strip(), value.strip())
    why = fields.get("traceback", "")
    if not why or why.startswith("To enable traceback"):
        why = f"exit code {fields['exitcode']}" if "exitcode" in fields else why
    if not why:
        return ""
    return f"rank {fields['rank']}: {why}" if "rank" in fields else why


def failure_reason(run_dir: Path, log_name: str = "launcher.log") -> str:
    """Why a group failed, in one line: rank 0's reason in summary.json when it wrote one, else
    :func:`last_line` of the group's log."""
    import json

    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
        reason = str(summary.get("reason") or "") if isinstance(summary, dict) else ""
    except (OSError, ValueError):
        reason = ""
    return reason.splitlines()[0] if reason.strip() else last_line(Path(run_dir), log_name)


def forward_signals(proc: subprocess.Popen, on_signal=None) -> None:
    """SIGINT/SIGTERM/SIGHUP to this launcher go to torchrun (which stops every rank at one step);
    ``on_signal(signum)`` is told first. The run's save signal (core.run.slurm) goes to every worker
    itself (:func:`signal_workers`: torchrun does not pass it on), which stop at one step as ``preempted``."""
    save = slurm.save_signal()

    def forward(signum, frame):
        if on_signal is not None:
            on_signal(signum)
        if signum == save:
            signal_workers(proc.pid, signum)
        elif proc.poll() is None:
            proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, save):
        if sig is not None:
            signal.signal(sig, forward)


SAVE_AGAIN = 1.0
"""Seconds between two hand-overs of the save signal to the workers (:func:`wait_forwarding`)."""


def wait_forwarding(proc: subprocess.Popen) -> int:
    """:func:`forward_signals`, then wait for the group and return its exit code. Once the save
    signal came (also while this launcher was starting: core.run.slurm.ASKED), it is handed to the
    workers again every :data:`SAVE_AGAIN` s until the group ends: a worker still starting may have
    ignored it, and one that has it already takes no notice of another."""
    asked = [slurm.save_signal()] if slurm.ASKED.is_set() else []
    forward_signals(proc, on_signal=lambda signum: asked.append(signum) if signum == slurm.save_signal() else None)
    while True:
        try:
            return proc.wait(timeout=SAVE_AGAIN)
        except subprocess.TimeoutExpired:
            if asked and asked[0] is not None:
                signal_workers(proc.pid, asked[0])


def signal_workers(root: int, signum: int) -> int:
    """Send ``signum`` to the torchrun workers at or below process ``root`` (the children of each
    ``python -m torch.distributed.run`` among ``root`` and its descendants: torchrun itself, or the
    supervisor above it; never torchrun, nor a worker's own children such as DataLoader workers).
    Returns how many were signalled."""
    import psutil

    try:
        top = psutil.Process(root)
        below = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0

    def is_torchrun(p) -> bool:
        try:
            return p.cmdline()[1:3] == ["-m", "torch.distributed.run"]
        except psutil.Error:
            return False

    agents = {p.pid for p in below if is_torchrun(p)}
    sent = 0
    for p in below:
        try:
            if p.ppid() in agents:
                p.send_signal(signum)
                sent += 1
        except psutil.Error:
            pass
    return sent


if __name__ == "__main__":
    sys.exit(main())
