"""(u) what ``run.log`` costs a loop of the user's own (tui_train.init, issue 23).

The same hand-written loop twice, alternating: MNIST MLP 784-128-10 over preloaded tensors, batch
64, SGD, CPU, one intra-op thread; both read the loss and the accuracy to the host every step (as a
loop that prints or logs them does); one also calls ``run.log({"loss": ..., "accuracy": ...})``
every step, with the control endpoint hosted and the system sampler on, as a user's run has them.
Goal: >= 0.98x (best of the reps). Figures, never assertions.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.engine_bench import load_tensors, mlp
from bench.util import table


def _loop(x, y, steps: int, run=None) -> float:
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    if run is not None:
        run.model, run.optimizer = model, opt
    t0 = time.perf_counter()
    n = 0
    for s, i in enumerate(range(0, x.shape[0], 64), start=1):
        idx = order[i:i + 64]
        xb, yb = x[idx], y[idx]
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_v, acc = loss.item(), (out.argmax(1) == yb).float().mean().item()
        if run is not None:
            run.log({"loss": loss_v, "accuracy": acc})
        n += idx.shape[0]
        if steps and s >= steps:
            break
    return n / (time.perf_counter() - t0)


def section_u(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    import tui_train

    steps = {"tiny": 50, "quick": 600, "full": 0}[size]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (x, y), _ = load_tensors(data_dir, torch.device("cpu"))
        bare, logged = [], []
        for rep in range(max(reps, 3) if size != "tiny" else 1):
            bare.append(_loop(x, y, steps))
            with tui_train.init(name=f"bench-u-{rep}", config={"batch_size": 64}, runs_dir=work, signals=False) as run:
                logged.append(_loop(x, y, steps, run))
    finally:
        torch.set_num_threads(threads)
    best, med = max(logged) / max(bare), statistics.median(logged) / statistics.median(bare)
    out("\n## (u) run.log in a loop of your own (tui_train.init) vs the same loop without it\n\n"
        f"MNIST MLP, batch 64, SGD, CPU, 1 thread, {'1 epoch' if not steps else f'{steps} steps'}; both read loss and "
        f"accuracy every step; {len(bare)} alternating reps. Goal: >= 0.98x, best of the reps.\n")
    out(table([["bare loop", f"{max(bare):,.0f}", f"{statistics.median(bare):,.0f}", ""],
               ["with run.log every step", f"{max(logged):,.0f}", f"{statistics.median(logged):,.0f}",
                f"**{best:.3f}x** best, {med:.3f}x median"]],
              ["loop", "best samples/s", "median samples/s", "ratio"]))
    out(f"<!-- (u) raw samples/s bare {bare} logged {logged} -->")
