"""tui-train: train PyTorch models from a terminal UI and steer the run live over SSH.

Everything tui-train installs lives under this one name (``tui_train.core``: the engine, no UI;
``tui_train.tui``: the CLI and the Textual app; ``tui_train.presets``: the preset files), so a
user's own packages named ``core``, ``tui``, ``models`` or ``utils`` never clash with ours. In the
repository the folders stay at the top level (``core/``, ``tui/``, ``presets/``), mapped under this
name by ``[tool.setuptools.package-dir]`` in pyproject.toml.

The public API for a loop of your own (issue 23; :mod:`tui_train.loop`)::

    import tui_train
    run = tui_train.init(name="my-exp", config={...}, model=model, optimizer=optimizer)
    ...
    run.log({"loss": loss.item(), "accuracy": acc})   # the step boundary: commands apply here
    ...
    run.finish()

``import tui_train`` stays light: :func:`init` imports the run layer when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_train.loop import Run

from tui_train._version import __version__

__all__ = ["__version__", "init"]


def init(name: str = "run", **kwargs: Any) -> Run:
    """Start a run of your own training loop: :func:`tui_train.loop.init` (its docstring has every option)."""
    from tui_train.loop import init as _init

    return _init(name, **kwargs)
