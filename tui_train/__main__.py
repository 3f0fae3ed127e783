"""``python -m tui_train``: the ``tui-train`` command."""

from tui_train.tui.cli import main

main()
