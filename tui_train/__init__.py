"""tui-train: train PyTorch models from a terminal UI and steer the run live over SSH.

Everything tui-train installs lives under this one name (``tui_train.core``: the engine, no UI;
``tui_train.tui``: the CLI and the Textual app; ``tui_train.presets``: the preset files), so a
user's own packages named ``core``, ``tui``, ``models`` or ``utils`` never clash with ours. In the
repository the folders stay at the top level (``core/``, ``tui/``, ``presets/``), mapped under this
name by ``[tool.setuptools.package-dir]`` in pyproject.toml.
"""

__version__ = "0.1.0"
