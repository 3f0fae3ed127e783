"""What makes a folder a run directory: the question the runs list, a note and a deletion all ask."""

from __future__ import annotations

from pathlib import Path

RUN_FILES = ("config.toml", "events.jsonl", "summary.json")
"""Files only a run directory has; one is enough (a run killed early may have only its config)."""


def is_run_dir(path: Path) -> bool:
    """A folder tui-train wrote (its config, its events or its summary)."""
    path = Path(path)
    return path.is_dir() and any((path / n).is_file() for n in RUN_FILES)
