"""The training state: where the run is and the live values, saved in checkpoints for exact resume."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingState:
    """Everything about the position and the live values that changes while training.

    The model, the optimizer, the schedule's plateau, early stopping and the clock keep their own
    state (each with ``state_dict()``); a checkpoint holds all of them (core.train.checkpoint.build_payload).
    """

    epoch: int = 0
    """Current epoch (0-based)."""
    batch: int = 0
    """Next batch index within the epoch."""
    step: int = 0
    """Optimizer steps done."""
    base_lr: float = 0.0
    """The base LR the schedule multiplies (live-editable)."""
    grad_clip: float = 0.0
    """Live gradient clip norm (0 = off)."""
    patience: int = 0
    """Live early-stopping patience."""
    history: list = field(default_factory=list)
    """Live interventions: {step, epoch, command, detail}."""
    epochs: list = field(default_factory=list)
    """One record per finished epoch (train/val metrics, lr, seconds)."""
    train_samples: int = 0
    """Training samples processed (flushed log intervals)."""
    last_val: dict = field(default_factory=dict)
    """Most recent validation metrics."""
    lr_total: int = 0
    """The total steps the LR schedule is laid over (0: the run's planned total; set at the first
    live change of the run's length, core.length)."""
    lr_plan: list = field(default_factory=list)
    """How a live length change re-laid the schedule: [[step, schedule_step, rate], ...]
    (core.schedule.schedule_step); empty: as planned."""
    breakpoints: list = field(default_factory=list)
    """Pending breakpoints, in the order they were added: {id, spec} (core.breakpoints)."""
    breakpoint_ids: int = 0
    """Breakpoint ids given so far (the next is one more; a cleared id is never reused)."""

    def state_dict(self) -> dict:
        """Plain values, under the checkpoint format's top-level keys."""
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step, "base_lr": self.base_lr,
                "grad_clip": self.grad_clip, "patience": self.patience, "history": list(self.history),
                "epochs": list(self.epochs), "train_samples": self.train_samples, "last_val": dict(self.last_val),
                "lr_total": self.lr_total, "lr_plan": [list(s) for s in self.lr_plan],
                "breakpoints": [dict(b) for b in self.breakpoints], "breakpoint_ids": self.breakpoint_ids}

    def load_state_dict(self, p: dict) -> None:
        """Restore from :meth:`state_dict` (or a checkpoint payload holding those keys)."""
        self.epoch, self.batch, self.step = int(p["epoch"]), int(p["batch"]), int(p["step"])
        self.base_lr, self.grad_clip, self.patience = float(p["base_lr"]), float(p["grad_clip"]), int(p["patience"])
        self.history, self.epochs = list(p["history"]), list(p["epochs"])
        self.train_samples, self.last_val = int(p["train_samples"]), dict(p["last_val"])
        # absent from checkpoints written before live length changes and breakpoints: as planned, none
        self.lr_total, self.lr_plan = int(p.get("lr_total", 0)), [list(s) for s in p.get("lr_plan", [])]
        self.breakpoints, self.breakpoint_ids = [dict(b) for b in p.get("breakpoints", [])], int(p.get("breakpoint_ids", 0))
