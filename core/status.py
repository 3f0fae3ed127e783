"""A run's status, folded once: from its events (:func:`status_after`), from its run directory
(:func:`run_status`), and into the process's exit code (:data:`EXIT_CODES`, :func:`exit_code`).

The headless printer, the trainer process, the TUI, the replay and the runs list all use these,
so a status means the same everywhere. Plain Python: no torch.
"""

from __future__ import annotations

from tui_train.core import events as E

UNFINISHED = "unfinished"
"""The status of a run directory that is not live and has no summary.json status (killed before
its summary, or going on where this viewer cannot see it). Never an engine status."""

EXIT_CODES = {"completed": 0, "early_stopped": 0, "stopped": 0, "unsaved": 3, "failed": 1, "interrupted": 130,
              "preempted": 75}
"""Process exit code per final status (headless, the trainer process, a torchrun group and the
TUI: :func:`exit_code`). 3, ``unsaved``: the run trained to its end but a checkpoint or record
file it was meant to write is missing (summary.json's ``not_saved``; STYLE.md habit 24). 75,
``preempted``: the save signal stopped the run with a checkpoint and it is meant to go on
(sysexits.h's EX_TEMPFAIL, "try again later": not 0, so a job chained ``afterok`` does not start,
and not a failure's 1; core.run.slurm). 2 (not here: no run began) is bad input, refused before
training."""


UNSAVED_FROM = ("completed", "early_stopped", "stopped")
"""The statuses that become ``unsaved`` when something the run was meant to write is missing
(failed and interrupted already say that not all went well: they keep their status and list it)."""


def not_saved_text(items: list | tuple | None, limit: int = 3) -> str:
    """One line for summary.json's ``not_saved`` entries: 'last.pt (RuntimeError: ...), best.pt (...)'."""
    parts = [f"{x.get('file', '?')} ({x.get('error', '')})" for x in (items or ()) if isinstance(x, dict)]
    more = f" and {len(parts) - limit} more" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


def with_losses(status: str, reason: str, lost: list) -> tuple[str, str]:
    """A run's final (status, reason) once ``lost`` (summary.json's ``not_saved``) is known:
    "completed" means everything promised is on disk (STYLE.md habit 24), so a run that would have
    ended well but lost something ends ``unsaved``, and the reason says what."""
    if not lost:
        return status, reason
    return ("unsaved" if status in UNSAVED_FROM else status), f"{reason}; not saved: {not_saved_text(lost)}"


def status_after(status: str, event: E.Event) -> str:
    """The status once ``event`` has arrived: StatusChanged and RunFinished set theirs, RunFailed
    makes it ``failed``, any other event leaves it. A failure is final, whatever is reported after it."""
    if status == "failed":
        return status
    if isinstance(event, E.RunFailed):
        return "failed"
    if isinstance(event, E.StatusChanged | E.RunFinished):
        return event.status
    return status


def run_status(summary_status: object, *, live: bool, announced: str = "") -> str:
    """The one status a run directory shows: a live run's last announced status (``announced``,
    the last StatusChanged in its events; ``running`` when it announced none); else summary.json's
    ``status``; else :data:`UNFINISHED`."""
    if live:
        return announced or "running"
    return str(summary_status or "") or UNFINISHED


def exit_code(status: str, *, detached: bool = False, not_final: int = 1) -> int:
    """The exit code of a process that showed or ran a run ending with ``status``: 0 when it left
    the run going (``detached``); the final status's :data:`EXIT_CODES` entry; ``not_final`` for
    any other status (1 by default: a trainer whose run never reported its end broke; the TUI
    passes 0 when nothing ran and 130 when it was stopped or signalled before the run ended)."""
    if detached:
        return 0
    return EXIT_CODES.get(status, not_final)
