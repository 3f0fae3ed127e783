"""Steer a run of the older ``pytorch_lightning`` package: ``pl.Trainer(callbacks=[TuiTrainCallback("my-exp")])``.

The same callback as :mod:`tui_train.integrations.lightning`, made of ``pytorch_lightning.Callback``
(a ``pytorch_lightning`` Trainer takes only those; use this module when your code imports
``pytorch_lightning``, and that one when it imports ``lightning.pytorch``).
"""

from __future__ import annotations

try:
    from pytorch_lightning import Callback
except ModuleNotFoundError as e:
    if e.name != "pytorch_lightning":
        raise
    raise ImportError("tui_train.integrations.pytorch_lightning needs pytorch_lightning: "
                      "pip install pytorch-lightning (or use lightning.pytorch with tui_train.integrations.lightning)") from None

from tui_train.integrations._lightning import LightningHooks

__all__ = ["TuiTrainCallback"]


class TuiTrainCallback(LightningHooks, Callback):
    """A ``pytorch_lightning`` callback that makes ``trainer.fit`` a tui-train run (see
    :class:`tui_train.integrations._lightning.LightningHooks` for the options)."""
