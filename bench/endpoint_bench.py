"""Run-as-a-place benchmarks: (h) what viewers cost a run, (i) key to acknowledgement through the
socket, (j) attaching to a long run.

(h) trains the same headless run with 0, 1 and 4 viewers attached (real `tui-train attach` TUIs in
120x40 tmux panes), alternating; (i) sends Pause/Resume and LR changes through a Connection to a
running trainer process and times the acknowledgements; (j) builds a run directory with 1e6
logged steps behind a live endpoint and times `tui-train attach` until its first complete frame.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

from bench.tui_bench import Tmux, tui_train_cmd
from bench.util import table


def run_sections(only: str, size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    if "h" in only:
        section_h(size, reps, data_dir, work, out)
    if "i" in only:
        section_i(size, data_dir, work, out)
    if "j" in only:
        section_j(size, work, out)


def _quoted(args: list[str]) -> str:
    return " ".join(f"'{a}'" for a in args)


# --------------------------------------------------------------------------- (h)

def _one_run(cmd: list[str], sets: list[str], runs: Path, viewers: int, work: Path) -> float:
    """samples/s of one headless run with ``viewers`` TUIs attached for all of its training: the
    run is paused as soon as its endpoint exists, the viewers attach and draw, then it resumes
    (pauses are excluded from samples/s, so the viewers' start-up is not charged to training)."""
    from tui_train.core import commands as C
    from tui_train.core import events as E
    from tui_train.core.run.endpoint import Connection

    proc = subprocess.Popen(cmd + ["run", "mnist-simple", "--headless", "--runs-dir", str(runs), *sets],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    panes = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(runs.glob("*/endpoint.json")):
            time.sleep(0.01)
        run_dir = next(runs.glob("*/endpoint.json")).parent
        conn = Connection(json.loads((run_dir / "endpoint.json").read_text())["socket"], viewer="bench")
        conn.send(C.Pause())
        next(e for e, _, _ in conn.events(0.05) if isinstance(e, E.CommandApplied) and e.origin == conn.viewer_id)
        for _ in range(viewers):
            pane = Tmux(120, 40)
            pane.start(_quoted(cmd + ["attach", str(run_dir)]), work)
            panes.append(pane)
        for pane in panes:
            while time.monotonic() < deadline and "PAUSED" not in pane.screen():
                time.sleep(0.05)
        conn.send(C.Resume())
        conn.close()
        proc.wait(1800)
        return json.loads((run_dir / "summary.json").read_text())["samples_per_second"]
    finally:
        for pane in panes:
            pane.kill()
        if proc.poll() is None:
            proc.kill()


def section_h(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    """Headless mnist-simple (1 thread) with 0, 1 and 4 attached TUIs; alternating reps."""
    # seconds of training: a 1.4 s run (3 epochs) mostly measured the viewers' redraws at the resume
    epochs = {"tiny": 1, "quick": 10, "full": 20}[size]
    subset = {"tiny": 5000, "quick": 0, "full": 0}[size]
    sets = ["--data-dir", str(data_dir), "--set", f"train.epochs={epochs}", "--set", "train.num_threads=1",
            "--set", f"data.subset={subset}", "--set", "checkpoint.save_best=false"]
    cmd = tui_train_cmd()
    res: dict[int, list[float]] = {0: [], 1: [], 4: []}
    for i in range(reps):
        for n in ((0, 1, 4) if i % 2 == 0 else (4, 1, 0)):
            res[n].append(_one_run(cmd, sets, work / f"h-{n}-{i}", n, work))
    base_best, base_med = max(res[0]), statistics.median(res[0])
    rows = [[str(n), f"{max(v):,.0f}", f"{statistics.median(v):,.0f}", f"**{max(v) / base_best:.2f}x**",
             f"{statistics.median(v) / base_med:.2f}x", str([round(x) for x in v])] for n, v in res.items()]
    out("\n## (h) viewers attached to a headless run\n")
    out(f"mnist-simple ({epochs} epoch(s)), 1 intra-op thread, headless; N real `tui-train attach` dashboards in 120x40 "
        f"tmux panes for the whole run (attached while it is paused at its start); {reps} alternating reps. "
        "Goal: 1 viewer >= 0.97x, 4 viewers >= 0.95x of none.\n")
    out(table(rows, ["viewers", "best samples/s", "median samples/s", "best vs none", "median vs none", "reps"]))


# --------------------------------------------------------------------------- (i)

def section_i(size: str, data_dir: Path, work: Path, out) -> None:
    """Key to acknowledgement through the socket: a Connection to a trainer process training the
    MNIST MLP (log_every 1) sends Pause, Resume and SetLearningRate and times each acknowledgement."""
    from tui_train.core import commands as C
    from tui_train.core import events as E
    from tui_train.core.config import load_config
    from tui_train.core.live.spawn import spawn, spec_for
    from tui_train.core.run.endpoint import Connection

    trials = {"tiny": 3, "quick": 30, "full": 100}[size]
    cfg = load_config("mnist-mlp", [f'data.data_dir="{data_dir}"', "train.epochs=1000", "train.log_every=1", "train.num_threads=1"])
    proc, ready = spawn(spec_for(cfg, runs_dir=work / "i", preset="mnist-mlp"))
    if not ready.get("ready"):
        raise RuntimeError(f"the trainer did not start: {ready.get('error')}")
    conn = Connection(Path(ready["socket"]), viewer="bench")
    times: dict[str, list[float]] = {"Pause": [], "Resume": [], "SetLearningRate": []}
    steps_after: list[int] = []

    def ack_of(name: str, t0: float) -> tuple[float, E.Event]:
        for event, _, _ in conn.events(timeout=0.01):
            if isinstance(event, E.CommandApplied) and event.command == name and event.origin == conn.viewer_id:
                return 1000 * (time.perf_counter() - t0), event
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"no acknowledgement of {name}")
        raise RuntimeError("the trainer closed the connection")

    try:
        for event, _, _ in conn.events(timeout=0.05):  # training has started
            if isinstance(event, E.StepMetrics) and event.step > 50:
                break
        for k in range(trials):
            for name, command in (("Pause", C.Pause()), ("SetLearningRate", C.SetLearningRate(1e-3 * (1 + k % 5 / 10))),
                                  ("Resume", C.Resume())):
                t0 = time.perf_counter()
                conn.send(command)
                ms, ack = ack_of(name, t0)
                times[name].append(ms)
                if name == "Pause":
                    paused_at, later = ack.step, 0
                    t_end = time.perf_counter() + 0.2
                    for event, _, _ in conn.events(timeout=0.02):
                        if isinstance(event, E.StepMetrics) and event.step > paused_at:
                            later += 1
                        if time.perf_counter() > t_end:
                            break
                    steps_after.append(later)
            time.sleep(0.05)
        conn.send(C.Interrupt("bench"))
    finally:
        conn.close()
        proc.wait(30)

    def pct(v, q):
        s = sorted(v)
        return s[min(len(s) - 1, round(q * (len(s) - 1)))]

    out("\n## (i) command to acknowledgement through the control socket\n")
    out(f"A trainer process (MNIST MLP, log_every 1, 1 thread) and a viewer on its socket; {trials} trials each. "
        "From sending the command to its CommandApplied arriving back. Goal: p99 <= 100 ms; 0 steps after a pause.\n")
    out(table([[name, f"{pct(v, 0.5):.1f}", f"{pct(v, 0.99):.1f}", f"{max(v):.1f}"] for name, v in times.items()]
              + [["steps after the pause was acknowledged (max)", str(max(steps_after) if steps_after else "-"), "", ""]],
              ["command", "p50 ms", "p99 ms", "max ms"]))


# --------------------------------------------------------------------------- (j)

def section_j(size: str, work: Path, out) -> None:
    """`tui-train attach` to a live run with N logged steps: seconds to its first complete frame."""
    from tui_train.core import events as E
    from tui_train.core.run.endpoint import Endpoint
    from tui_train.core.run.runlog import RunLog

    n = {"tiny": 20_000, "quick": 1_000_000, "full": 1_000_000}[size]
    run_dir = work / "j" / "20260101-000000-long"
    run_dir.mkdir(parents=True)
    log = RunLog(run_dir)
    log.open("")
    log.write(E.RunStarted(run_dir=str(run_dir), preset="long", device="cpu", task="classification", epochs=n // 1000,
                           steps_per_epoch=1000, total_steps=n + 1000, train_size=64_000, val_size=6000, test_size=10000,
                           num_params=101_770, model="mlp 784-128-10", hyperparameters={"lr": 1e-3, "optimizer": "sgd"},
                           live=("lr", "momentum", "weight_decay", "grad_clip", "patience")))
    log.write(E.StatusChanged(status="running", reason="started", cause="start"))
    t0 = time.perf_counter()
    for step in range(1, n + 1):
        log.write(E.StepMetrics(step=step, epoch=(step - 1) // 1000, epoch_progress=((step - 1) % 1000 + 1) / 1000,
                                loss=2.3 / (1 + step / 500), lr=1e-3, samples_per_second=64_000.0, accuracy=min(0.99, step / n),
                                elapsed=step * 1e-3))
        if step % 1000 == 0:
            log.write(E.EpochMetrics(epoch=step // 1000 - 1, step=step, train={"loss": 0.1, "accuracy": 0.97},
                                     val={"loss": 0.12, "accuracy": 0.96}, lr=1e-3, seconds=1.0))
    written = time.perf_counter() - t0
    endpoint = Endpoint(run_dir, lambda c, o: None, status=lambda: "running", initial_seq=log.seq)
    endpoint.start()
    cmd = tui_train_cmd()
    firsts = []
    try:
        for _ in range(3):
            pane = Tmux(120, 40)
            try:
                t1 = time.perf_counter()
                pane.start(_quoted(cmd + ["attach", str(run_dir)]), work)
                target = f"step {n}/"
                while time.perf_counter() - t1 < 60:
                    screen = pane.screen()
                    if "RUNNING" in screen and target in screen and "epochs" in screen:
                        firsts.append(time.perf_counter() - t1)
                        break
                    time.sleep(0.01)
            finally:
                pane.kill()
    finally:
        endpoint.close()
        log.close()
    out("\n## (j) attaching to a long run\n")
    out(f"A live run directory with {n:,} logged steps ({written:.0f} s to write), `tui-train attach` in a 120x40 tmux pane: "
        "seconds from the command to a first frame showing the status, the step count and the epoch table. Goal: <= 1.5 s.\n")
    out(table([[f"{n:,}", f"{min(firsts):.2f}" if firsts else "not seen", f"{statistics.median(firsts):.2f}" if firsts else "-"]],
              ["logged steps", "best s", "median s"]))
