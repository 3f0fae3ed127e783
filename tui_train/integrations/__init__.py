"""Optional integrations: steer a Lightning or a Hugging Face ``Trainer`` run with tui-train (issue 23).

Each one is a callback of the framework's own kind that makes the framework's loop a client of
:func:`tui_train.init`, exactly as a loop of your own is: a run directory, the control endpoint
(``tui-train attach``), pause, live learning rate / momentum / weight decay, checkpoint on request,
early stop::

    from tui_train.integrations.lightning import TuiTrainCallback            # import lightning.pytorch as L
    from tui_train.integrations.pytorch_lightning import TuiTrainCallback    # import pytorch_lightning as pl
    from tui_train.integrations.transformers import TuiTrainCallback         # transformers.Trainer

Install the framework with the extra of the same name (``pip install 'tui-train[lightning]'`` or
``'tui-train[transformers]'``). Importing this package imports neither framework; a module whose
framework is missing raises ImportError saying which extra to install.
"""
