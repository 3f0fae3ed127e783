"""The garbage collector's policy for tui-train's own processes (no torch import: the TUI uses it)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Move every object alive now (torch's, Textual's, the loaded modules': some 250,000 in a
    viewer) into the garbage collector's permanent generation. A process of ours calls it once it
    has started (a trainer after ``prepare()``, the TUI when it mounts): the full collections that
    Python runs from time to time then scan only what was made since, instead of pausing the
    process for 100-150 ms (bench (e): a viewer's key-to-acknowledgement p99 was such a pause).
    Never called by the engine itself: a library does not freeze its user's heap."""
    gc.freeze()
