"""Steer a Lightning run: ``Trainer(callbacks=[TuiTrainCallback("my-exp")])`` (issue 23).

``TuiTrainCallback`` is a ``lightning.pytorch.Callback``; where only the older ``pytorch_lightning``
package is installed, it is one of that package's. With both installed, a ``pytorch_lightning``
Trainer takes :class:`tui_train.integrations.pytorch_lightning.TuiTrainCallback` instead (each
Trainer wants callbacks of its own package). What it does, hook by hook:
:mod:`tui_train.integrations._lightning`.
"""

from __future__ import annotations

try:
    from lightning.pytorch import Callback
except ModuleNotFoundError as e:
    if e.name not in ("lightning", "lightning.pytorch"):
        raise
    try:
        from pytorch_lightning import Callback
    except ModuleNotFoundError as e2:
        if e2.name != "pytorch_lightning":
            raise
        raise ImportError("tui_train.integrations.lightning needs Lightning: pip install 'tui-train[lightning]'") from None

from tui_train.integrations._lightning import LightningHooks

__all__ = ["TuiTrainCallback"]


class TuiTrainCallback(LightningHooks, Callback):
    """A Lightning callback that makes ``trainer.fit`` a tui-train run: a run directory, the control
    endpoint, pause, live LR/momentum/weight decay, checkpoints on request (``.ckpt``), early stop.
    Options: :class:`tui_train.integrations._lightning.LightningHooks`."""
