"""The version, alone in its module: the engine records it in checkpoints without importing the
public API (``tui_train/__init__``)."""

__version__ = "0.1.0"
