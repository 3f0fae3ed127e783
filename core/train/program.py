"""A trained model as a self-contained program: ``torch.export`` with the preprocessing folded in.

``tui-train export RUN --out model.pt2`` writes a program that plain torch loads
(``torch.export.load(path).module()``), with no tui-train and no user model file at load time. It
takes the inputs as the dataset gives them before tui-train normalises them (for the built-in
image sets: float pixels in [0, 1], shaped like ``input_shape`` with a batch dimension of any
size), normalises them as the run did, runs the model, and for regression turns the standardised
predictions back into the dataset's units. The model card (core.train.checkpoint.model_card) goes
beside it as ``<out>.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path

import torch
from torch import nn

from tui_train.core.plugins import use_run_roots
from tui_train.core.train.checkpoint import TMP_PREFIX, CheckpointError, load, load_model_state, model_card
from tui_train.core.train.models import model_output


class WithPreprocessing(nn.Module):
    """``model`` with the run's input normalisation before it and, for regression, the target
    scaling undone after it."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], mean: list[float], std: list[float],
                 target: tuple[float, float] | None):
        super().__init__()
        self.model = model
        shape = (1, -1) + (1,) * (len(input_shape) - 1)
        self.normalize = bool(mean)
        self.register_buffer("mean", torch.tensor(mean or [0.0], dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std or [1.0], dtype=torch.float32).view(shape))
        self.target = target is not None
        t_mean, t_std = target or (0.0, 1.0)
        self.register_buffer("t_mean", torch.tensor(float(t_mean)))
        self.register_buffer("t_std", torch.tensor(float(t_std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.normalize:
            x = (x - self.mean) / self.std
        out = model_output(self.model(x))
        if self.target:
            out = out * self.t_std + self.t_mean
        return out


@contextlib.contextmanager
def torch_output_into(path: Path):
    """Everything torch prints while the block runs (its logging, warnings, graph dumps, at the
    Python and the file-descriptor level) goes to ``path`` instead of the terminal: a failed
    ``torch.export`` printed about 40 lines and a graph before tui-train's one line (issue 20,
    defect 5). Nothing is redirected when ``path`` cannot be written."""
    try:
        sink = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    saved: list[int] = []
    with sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        try:
            for fd in (1, 2):
                saved.append(os.dup(fd))
                os.dup2(sink.fileno(), fd)
        except OSError:  # no such descriptor (an embedding host): the Python-level redirection still holds
            pass
        loggers = [logging.getLogger(name) for name in ("torch", "torch._dynamo", "torch.export", "torch.fx")]
        handlers = [(lg, h, h.setStream(sink)) for lg in loggers for h in lg.handlers if isinstance(h, logging.StreamHandler)]
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
        finally:
            for _lg, h, old in handlers:
                h.setStream(old)
            sink.flush()
            for fd, dup in zip((1, 2), saved, strict=False):
                os.dup2(dup, fd)
                os.close(dup)


def _keep_report(report: Path, error: BaseException) -> str:
    """Add the error's full text to torch's report and return its path ('' when nothing is there)."""
    try:
        with open(report, "a", encoding="utf-8") as f:
            f.write(f"\n{type(error).__name__}: {error}\n")
        return str(report)
    except OSError:
        return ""


def export_program(checkpoint_path: Path, out: Path) -> Path:
    """Write the checkpoint's model as a ``torch.export`` program with a dynamic batch
    dimension (and ``<out>.json``, its model card). One-line CheckpointError when the model cannot
    be traced, naming the cause and the way that always works (.safetensors + its metadata)."""
    from tui_train.core.config import from_dict
    from tui_train.core.train.models import build_model

    out = Path(out)
    payload = load(checkpoint_path)
    use_run_roots(payload.get("import_roots"))  # its user code, from wherever export runs
    card = model_card(payload, checkpoint_path)
    cfg = from_dict(payload["config"], f"{checkpoint_path} (saved config)")
    input_shape = tuple(int(s) for s in payload["input_shape"])
    n_out = int(payload.get("num_classes") or 0) if payload.get("task") == "classification" \
        else int(payload.get("output_dim") or 1)
    model = build_model(cfg.model, input_shape, n_out)
    load_model_state(model, payload["model"], checkpoint_path)
    target = (float(payload.get("target_mean", 0.0)), float(payload.get("target_std", 1.0))) \
        if payload.get("task") == "regression" else None
    wrapped = WithPreprocessing(model, input_shape, list(payload.get("data_mean") or []), list(payload.get("data_std") or []),
                                target).eval()
    example = torch.rand((2, *input_shape))
    report = out.with_name(out.name + ".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch_output_into(report):
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(wrapped, (example,), dynamic_shapes={"x": {0: batch}})
    except Exception as e:  # noqa: BLE001 - torch.export raises many kinds; the user gets one line
        cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kept = _keep_report(report, e)
        raise CheckpointError(f"--out {out}: torch.export cannot trace the model ({type(e).__name__}: {cause[:200]}); "
                              f"export --out {out.with_suffix('.safetensors')} instead: the weights and, in "
                              f"{out.with_suffix('.safetensors').name}.json, the preprocessing to apply"
                              + (f" (torch's report: {kept})" if kept else "")) from None
    with contextlib.suppress(OSError):  # traced: torch's warnings are of no use to the user
        report.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{TMP_PREFIX}{os.getpid()}-{out.name}")  # torch.export.save wants the .pt2 ending
    try:
        torch.export.save(program, str(tmp))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    card["program"] = {"inputs": "as the dataset gives them before normalisation, batched: [N, *input_shape]",
                       "outputs": "logits (classification) or predictions in the dataset's units (regression)"}
    side = out.with_name(out.name + ".json")
    side.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return out
