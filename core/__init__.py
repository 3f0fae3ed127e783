"""tui-train's engine: config, data, models, the Trainer, checkpoints. Headless: imports no UI."""

__version__ = "0.1.0"
