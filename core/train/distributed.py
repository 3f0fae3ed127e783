"""One run over several processes (torchrun): who is who, and the few collectives the loop needs.

A run started by ``torchrun`` (or ``tui-train run --nproc-per-node N``) has one process per rank.
Rank 0 owns the run: it hosts the control endpoint, writes the run directory and the checkpoints,
and decides (STYLE.md: one process owns the model, rank 0 decides for all ranks). Every rank
trains its shard of each epoch (core.train.data) inside DistributedDataParallel, and they agree at
*sync points* through :meth:`World.sync`: rank 0's pending commands travel to every rank as JSON
bytes (never pickle), together with "a rank was asked to stop", so that every rank applies the
same commands at the same step. Metrics are summed over ranks (:meth:`World.all_sum`,
:meth:`World.all_reduce_`), never averaged as averages.

A single-process run has ``World()`` (world size 1): every method is then a no-op returning its
input, so the loop reads the same either way.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tui_train.core.live.launch import RESTART_ENV
from tui_train.core.train import checkpoint as ckpt

COLLECTIVE_TIMEOUT_S = float(os.environ.get("TUI_TRAIN_COLLECTIVE_TIMEOUT", "120"))
"""Seconds a collective may wait for the other ranks before it fails (a rank that died -9 is
noticed at once by gloo's closed connection; this bounds a rank that hangs)."""

SYNC_EVERY = int(os.environ.get("TUI_TRAIN_SYNC_EVERY", "0") or 0)
"""Steps between two sync points of a run over several processes (0: train.log_every)."""

MAX_SYNC_BYTES = 1 << 20
"""The most command bytes one sync carries (rank 0 never queues more: commands are a few dozen bytes)."""


class DistributedError(RuntimeError):
    """The ranks cannot agree (a desynchronised run, or a launch that is not a torchrun one)."""


@dataclass
class World:
    """This process's place in the run: rank, world size, and the process groups once started."""

    rank: int = 0
    """Global rank (0 owns the run)."""
    world_size: int = 1
    """Number of processes training the run."""
    local_rank: int = 0
    """Rank on this node (the CUDA device index)."""
    local_world_size: int = 1
    """Processes on this node (they share its CPU cores)."""
    restart: int = 0
    """How many times the group was restarted (TORCHELASTIC_RESTART_COUNT plus :data:`RESTART_ENV`)."""
    backend: str = ""
    """'gloo' or 'nccl' once :meth:`start` ran."""
    _control: Any = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        """More than one process trains this run."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """This process owns the run (rank 0)."""
        return self.rank == 0

    # -- setting up ------------------------------------------------------------------------------
    def start(self, device: torch.device) -> None:
        """Join the process group (nccl on CUDA, gloo otherwise) and make the gloo group the
        control syncs use; pin this rank's CUDA device. No-op for a single process."""
        if not self.enabled:
            return
        import torch.distributed as dist

        if device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
        self.backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S)
        if not dist.is_initialized():
            dist.init_process_group(self.backend, timeout=timeout)
        self._control = dist.new_group(backend="gloo", timeout=timeout) if self.backend != "gloo" else dist.group.WORLD

    def close(self) -> None:
        """Leave the process group (at the end of the run)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - a peer already gone: nothing left to leave
                pass

    # -- collectives -----------------------------------------------------------------------------
    def sync(self, payload: bytes, stop: bool) -> tuple[bytes, bool]:
        """Rank 0's ``payload`` on every rank, and whether any rank asked to stop. One small
        all-reduce, plus a broadcast of the payload only when there is one."""
        if not self.enabled:
            return payload, stop
        import torch.distributed as dist

        if len(payload) > MAX_SYNC_BYTES:
            raise DistributedError(f"{len(payload)} bytes of commands in one sync (at most {MAX_SYNC_BYTES})")
        head = torch.tensor([len(payload) if self.is_main else 0, int(stop)], dtype=torch.int64)
        dist.all_reduce(head, group=self._control)
        size, stops = int(head[0]), int(head[1])
        if size == 0:
            return b"", stops > 0
        buf = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if self.is_main else torch.empty(size, dtype=torch.uint8)
        dist.broadcast(buf, src=0, group=self._control)
        return buf.numpy().tobytes(), stops > 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the ranks (float64, on the control group)."""
        if not self.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self._control)
        return t.tolist()

    def all_reduce_(self, tensors: list[torch.Tensor]) -> None:
        """Sum each tensor over the ranks, in place, on its device (the main group)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for t in tensors:
            dist.all_reduce(t)

    def broadcast_text(self, text: str) -> str:
        """Rank 0's ``text`` on every rank."""
        data, _ = self.sync(text.encode() if self.is_main else b"", False)
        return data.decode() if self.enabled else text

    def gather_json(self, value: Any) -> list[Any] | None:
        """Every rank's JSON-able ``value``, in rank order, on rank 0 (None elsewhere)."""
        if not self.enabled:
            return [value]
        import torch.distributed as dist

        data = json.dumps(value).encode()
        sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(self.world_size)]
        dist.all_gather(sizes, torch.tensor([len(data)], dtype=torch.int64), group=self._control)
        longest = max(int(s) for s in sizes)
        mine = torch.zeros(longest, dtype=torch.uint8)
        mine[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else mine[:0]
        parts = [torch.empty(longest, dtype=torch.uint8) for _ in range(self.world_size)]
        dist.all_gather(parts, mine, group=self._control)
        if not self.is_main:
            return None
        return [json.loads(p[:int(s)].numpy().tobytes()) for p, s in zip(parts, sizes, strict=True)]


class Ranks:
    """Several processes (torchrun): the :class:`tui_train.core.run.sync.Sync` strategy over a
    started :class:`World`. Ranks meet every ``log_every`` steps (BENCHMARKS.md (k): every step
    costs more than 2% of a small model's step; ``TUI_TRAIN_SYNC_EVERY=1`` makes them meet at every
    step) and at each epoch's end; rank 0's queued commands go to every rank as JSON, and every rank
    applies the same commands in the same order, so that they stay at the same step with the same
    values (STYLE.md habit 21)."""

    solo = False

    def __init__(self, world: World):
        self.world = world
        """This process's place in the group."""
        self.rank, self.world_size, self.is_main = world.rank, world.world_size, world.is_main

    def every(self, log_every: int) -> int:
        return SYNC_EVERY or log_every

    def exchange(self, inbox, stop, wait: float = 0.0) -> tuple[list, bool]:
        from tui_train.core import protocol as P
        from tui_train.core.run.sync import take

        pending = take(inbox, wait) if self.is_main else []
        payload = b""
        if pending:
            payload = "\n".join(json.dumps({"origin": origin, **P.command_message(cmd, 0)}) for cmd, origin in pending).encode()
        data, stopped = self.world.sync(payload, stop.is_set())
        out = []
        for line in data.decode().splitlines() if data else ():
            msg = json.loads(line)
            origin = str(msg.pop("origin", ""))
            cmd, _ = P.command_from_message(msg)
            out.append((cmd, origin))
        return out, stopped

    def all_sum(self, values: list[float]) -> list[float]:
        return self.world.all_sum(values)

    def gather_json(self, value: Any) -> list[Any] | None:
        return self.world.gather_json(value)

    def broadcast_text(self, text: str) -> str:
        return self.world.broadcast_text(text)

    def close(self) -> None:
        self.world.close()

    def disagreement(self, state: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> str:
        """At the end of the run: what the ranks disagree on, as one line ('' when every rank has
        the same step, epoch, live values and weights; '' on the ranks > 0 too: rank 0 reports).
        Every rank's values and a checksum of its weights are gathered on rank 0 (one collective,
        which every rank reaches). ``state``: the loop's core.state.TrainingState. One process has
        no one to disagree with: core.run.sync.Local has no such method, and the loop asks only
        when the strategy is not ``solo``."""
        group = optimizer.param_groups[0]
        with torch.no_grad():
            checksum = float(sum(w.double().sum() for w in model.parameters()))
        mine = [state.step, state.epoch, state.base_lr, float(group.get("lr", 0.0)),
                float(group.get("momentum", 0.0) or 0.0), float(group.get("weight_decay", 0.0)), state.grad_clip, checksum]
        every = self.gather_json(mine)
        if every is None or all(v == every[0] for v in every):
            return ""
        names = ("step", "epoch", "base lr", "lr", "momentum", "weight decay", "grad clip", "weights")
        differ = [n for i, n in enumerate(names) if len({json.dumps(v[i]) for v in every}) > 1]
        return f"the {len(every)} ranks disagree at the end on: {', '.join(differ)}"


def strategy(world: World):
    """The sync strategy for ``world``: :class:`tui_train.core.run.sync.Local` for one process, else :class:`Ranks`."""
    if not world.enabled:
        from tui_train.core.run.sync import Local

        return Local()
    return Ranks(world)


def from_env(env: dict | None = None) -> World:
    """The World torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK, ...); a
    plain process gets ``World()``."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        restart = int(env.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) + int(env.get(RESTART_ENV, "0") or 0)
        if world <= 1:
            return World(restart=restart)
        return World(rank=int(env["RANK"]), world_size=world, local_rank=int(env.get("LOCAL_RANK", "0")),
                     local_world_size=int(env.get("LOCAL_WORLD_SIZE", "1")), restart=restart)
    except (KeyError, ValueError) as e:
        raise DistributedError(f"the torchrun environment is incomplete or malformed ({e}): start the run with torchrun "
                               "or `tui-train run --nproc-per-node N`") from None


def rng_to_json(rng: dict) -> dict:
    """A :func:`core.train.checkpoint.rng_state` dict as JSON-able values (to gather it from every rank)."""
    out: dict[str, Any] = {}
    for key, value in rng.items():
        if isinstance(value, torch.Tensor):
            out[key] = {"tensor": value.tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
        elif key == "cuda":
            out[key] = [{"tensor": t.tolist(), "dtype": "uint8"} for t in value]
        elif key == "numpy":
            out[key] = [value[0], value[1].tolist(), *value[2:]]
        else:
            out[key] = value
    return out


def rng_from_json(data: dict) -> dict:
    """The inverse of :func:`rng_to_json` (tensors back as tensors)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "torch":
            out[key] = torch.tensor(value["tensor"], dtype=getattr(torch, value["dtype"]))
        elif key == "cuda":
            out[key] = [torch.tensor(v["tensor"], dtype=torch.uint8) for v in value]
        elif key == "numpy":
            out[key] = [value[0], torch.tensor(value[1], dtype=torch.int64), *value[2:]]
        else:
            out[key] = value
    return out


def restart_checkpoint(restart: int, run_dir: Path | None) -> Path | None:
    """A group torchrun restarted (``restart``: core.train.distributed.World.restart, > 0) continues from
    the run directory's newest checkpoint (None when this is the first attempt, or nothing was
    saved yet). Takes the count (the launcher's supervisor, which imports no torch, does not call it)."""
    if restart <= 0 or run_dir is None:
        return None
    folder = Path(run_dir) / "checkpoints"
    return Path(run_dir) if folder.is_dir() and ckpt.newest(folder) is not None else None
