"""Atomic, self-describing checkpoints.

Written to a temporary file in the same folder, flushed and fsynced, then ``os.replace``d onto
the final name, so no partial file ever carries a final name. Loaded with
``torch.load(weights_only=True)`` only: a file that would need arbitrary unpickling is refused.
"""

from __future__ import annotations

import io
import os
import pickle
import platform
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tui_train._version import __version__
from tui_train.core.errors import first_line
from tui_train.core.plugins import import_roots
from tui_train.core.run.checkpoints import (  # noqa: F401 - the file helpers, named here too (ckpt.prune...)
    TMP_PREFIX,
    checkpoint_name,
    clean_stale,
    newest,
    prune,
    run_dir_of,
    write_atomic,
)

FORMAT_VERSION = 1
"""Bumped when the checkpoint layout changes incompatibly."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be saved or loaded. ``str(err)`` is one line."""


def versions() -> dict:
    """Library versions recorded in each checkpoint."""
    return {"tui_train": __version__, "torch": str(torch.__version__), "python": platform.python_version()}


def save_atomic(payload: dict, path: Path) -> Path:
    """Serialize ``payload`` with torch.save into ``path`` atomically (core.run.checkpoints.write_atomic). Returns the path."""
    return write_atomic(path, lambda f: torch.save(payload, f))


def load(path: Path, map_location: Any = "cpu") -> dict:
    """Load a checkpoint safely (weights_only). Raises CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [x.strip() for x in str(e).splitlines() if "nsupported" in x or "GLOBAL" in x or "blocked" in x]
        if lines:
            why = lines[0].removeprefix("WeightsUnpickler error:").strip()
            raise CheckpointError(f"{path}: refused: loading it would need arbitrary unpickling, "
                                  f"which can run code ({why[:160]})") from None
        raise CheckpointError(f"{path}: corrupt or not a checkpoint ({first_line(e, 200)})") from None
    except Exception as e:  # noqa: BLE001 - garbage input raises KeyError, IndexError, RuntimeError...
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {first_line(e, 200)})") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path}: not a tui-train checkpoint (no 'model' entry)")
    fv = payload.get("format_version")
    if fv is not None and fv > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer tui-train (format {fv}, this one reads {FORMAT_VERSION})")
    return payload



def load_model_state(model: torch.nn.Module, state: dict, source: Path | str) -> None:
    """Load weights, turning shape/key mismatches into one line naming the parameter."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''}")
        raise CheckpointError(f"{source}: incompatible with this model ({'; '.join(parts)})")
    for k, v in state.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: incompatible with this model: {k} has shape {tuple(v.shape)} in the checkpoint, "
                                  f"{tuple(own[k].shape)} in the model")
    model.load_state_dict(state)


def build_payload(reason: str, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: dict,
                  preset: str, data: Any, training: dict, device: torch.device) -> dict:
    """A self-describing checkpoint: weights, optimizer, config, data description, the training
    state (``training``: the engine's concerns' ``state_dict()``s under the format's top-level
    keys), every RNG state and the versions. :func:`restore_payload` is its inverse."""
    return {
        "format_version": FORMAT_VERSION, "kind": "tui-train-checkpoint", "reason": reason,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config, "preset": preset,
        "task": data.task, "input_shape": list(data.input_shape), "num_classes": data.num_classes,
        "output_dim": int(getattr(data, "output_dim", 1)),
        "data_mean": list(data.mean), "data_std": list(data.std), "class_names": list(getattr(data, "class_names", [])),
        "target_mean": float(getattr(data, "target_mean", 0.0)), "target_std": float(getattr(data, "target_std", 1.0)),
        **training,
        "rng": rng_state(device), "versions": versions(), "saved_at": time.time(),
        "threads": torch.get_num_threads(),  # the numerics depend on it: a resume reuses it (core.train.threads)
        "import_roots": import_roots(),  # where user code was found: eval/export/resume from elsewhere (core.plugins)
    }


def restore_payload(payload: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device, source: Path | str) -> None:
    """Load a checkpoint's weights, optimizer state and RNG states (CheckpointError when they do
    not fit). The training state is the caller's to take from the payload's top-level keys."""
    load_model_state(model, payload["model"], source)
    try:
        optimizer.load_state_dict(payload["optimizer"])
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{source}: optimizer state does not fit ({e})") from None
    rng_restore(payload["rng"], device)


def rng_state(device: torch.device) -> dict:
    """Python, numpy, torch (and CUDA) RNG states as tensors and plain values, so that
    ``weights_only`` loading accepts them."""
    py = random.getstate()
    np_state = np.random.get_state()
    out = {"python": [py[0], list(py[1]), py[2]], "torch": torch.get_rng_state(),
           "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                     int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available() and device.type == "cuda":
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def rng_restore(rng: dict, device: torch.device) -> None:
    """The inverse of :func:`rng_state`."""
    py = rng["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = rng["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state_all(rng["cuda"])


def resolve(path: Path) -> Path:
    """A checkpoint file as given, or a run directory (or its checkpoints/ folder) meaning its
    newest checkpoint. Raises CheckpointError when a folder holds none."""
    path = Path(path)
    if not path.is_dir():
        return path
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    found = newest(folder)
    if found is None:
        raise CheckpointError(f"{path}: no checkpoint found in {folder}")
    return found


def load_for_resume(path: Path, overrides: list[str] | tuple = ()) -> tuple[Path, dict, Any]:
    """(checkpoint file, payload, its config with ``--set`` overrides applied) to continue a run
    from a checkpoint file or a run directory (its newest). One-line CheckpointError/ConfigError."""
    from tui_train.core.config import apply_overrides, from_dict

    src = resolve(path)
    payload = load(src)
    raw = payload["config"]
    if overrides:
        raw = apply_overrides(raw, list(overrides))
    return src, payload, from_dict(raw, f"{src} (saved config)")


def to_bytes(payload: dict) -> bytes:
    """Serialize a payload in memory (used to measure size and in tests)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def model_card(payload: dict, checkpoint_path: Path) -> dict:
    """What a model needs to be used without tui-train, from a checkpoint payload (plain values):
    task, input shape, class names, the input normalisation (``normalize``, absent when the run
    did not normalise), for regression the target scaling to undo (``target``: prediction x std
    + mean), the model spec, the preset, step and test metrics, and the torch version."""
    import json

    cfg = payload.get("config") if isinstance(payload.get("config"), dict) else {}
    card: dict = {"format": "tui-train-model", "version": 1, "task": payload.get("task"),
                  "input_shape": list(payload.get("input_shape") or []), "num_classes": payload.get("num_classes"),
                  "output_dim": int(payload.get("output_dim") or 1) if payload.get("task") == "regression"
                  else payload.get("num_classes"),
                  "class_names": list(payload.get("class_names") or [])}
    mean, std = list(payload.get("data_mean") or []), list(payload.get("data_std") or [])
    if mean:
        card["normalize"] = {"mean": mean, "std": std, "how": "x = (x - mean) / std, per channel (dim 1)"}
    if payload.get("task") == "regression":
        card["target"] = {"mean": float(payload.get("target_mean", 0.0)), "std": float(payload.get("target_std", 1.0)),
                          "how": "y = prediction * std + mean (in the dataset's units)"}
    card["model"] = dict(cfg.get("model") or {})
    card["config"] = cfg  # the run's resolved config: `tui-train eval` of an export loads its data from it
    card["preset"] = payload.get("preset")
    card["step"] = payload.get("step")
    card["epoch"] = payload.get("epoch")
    summary_file = run_dir_of(Path(checkpoint_path)) / "summary.json"
    try:
        test = json.loads(summary_file.read_text(encoding="utf-8")).get("test")
    except (OSError, ValueError):
        test = None
    card["test"] = test if isinstance(test, dict) else None
    card["torch"] = torch.__version__
    card["checkpoint"] = str(Path(checkpoint_path).resolve())
    return card


def export_weights(checkpoint_path: Path, out: Path) -> tuple[Path, int]:
    """Write the model weights alone, as ``.safetensors`` or ``.pt`` (a plain state dict), with
    what the model needs (:func:`model_card`) in ``<out>.json`` beside it, and for
    ``.safetensors`` also in the file's metadata under ``tui_train`` (JSON).

    The result loads into the user's own model class with ``load_state_dict`` after
    ``safetensors.torch.load_file(out)`` or ``torch.load(out, weights_only=True)``.
    Returns (path, number of tensors).
    """
    import json

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".safetensors", ".pt", ".pth"):
        raise CheckpointError(f"--out {out}: unknown format '{suffix or '(none)'}' (allowed: .safetensors, .pt, .pth, .pt2)")
    payload = load(checkpoint_path)
    card = model_card(payload, checkpoint_path)
    state = {k: v.detach().cpu().contiguous() for k, v in payload["model"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f"{TMP_PREFIX}{out.name}.{os.getpid()}"
    try:
        if suffix == ".safetensors":
            from safetensors.torch import save_file

            # safetensors refuses tensors that share memory; exported weights are copies anyway
            state = {k: v.clone() for k, v in state.items()}
            meta = {"format": "pt", "source": str(Path(checkpoint_path).name), "step": str(payload.get("step", "")),
                    "preset": str(payload.get("preset", "")), "tui_train": json.dumps(card)}
            save_file(state, str(tmp), metadata=meta)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, out)
        else:
            save_atomic(state, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    side = out.with_name(out.name + ".json")
    side_tmp = side.with_name(f"{TMP_PREFIX}{side.name}.{os.getpid()}")
    side_tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    os.replace(side_tmp, side)
    return out, len(state)
