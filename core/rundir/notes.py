"""A run's tags and free-text note: ``notes.json`` in its run directory (``{"tags": [...], "note": "..."}``).

Written by people (``tui-train ctl RUN_DIR note/tag/untag``, the Runs screen's note dialog), never
by a trainer, so a finished run and a live one are annotated the same way and no endpoint is
involved. The file is replaced atomically (temporary file beside it, fsync, ``os.replace``); a
damaged one never stops a listing: :func:`read_notes` says why in :attr:`Notes.error`, and a write
over it keeps the damaged file as ``notes.json.bad`` rather than losing what it held.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tui_train.core.run.checkpoints import write_atomic
from tui_train.core.rundir.layout import RUN_FILES, is_run_dir

NOTES_FILE = "notes.json"
"""The tags and note of a run, in its run directory."""

DAMAGED_SUFFIX = ".bad"
"""A damaged notes.json is moved to ``notes.json.bad`` before a write replaces it."""

TAG_LIMIT = 40
"""Characters in a tag at most."""

TAGS_LIMIT = 32
"""Tags on a run at most."""

NOTE_LIMIT = 4000
"""Characters in a note at most."""

FILE_LIMIT = 1 << 20
"""Bytes of notes.json read at most (a larger file is reported as damaged, not read)."""


@dataclass(frozen=True)
class Notes:
    """What a run's notes.json holds."""

    tags: tuple[str, ...] = ()
    """Short labels (no spaces or commas), in the order they were added."""
    note: str = ""
    """Free text ('' when none)."""
    error: str = ""
    """Why notes.json could not be read ('' when it was, or when there is none): one line."""

    def to_json(self) -> dict:
        """The file's content."""
        return {"tags": list(self.tags), "note": self.note}


class NotesError(ValueError):
    """A tag or note that cannot be stored, or a folder that is not a run: one line."""


def check_tag(tag: str) -> str:
    """``tag`` stripped, or NotesError saying why it cannot be a tag."""
    text = str(tag).strip()
    if not text:
        raise NotesError("a tag cannot be empty")
    if len(text) > TAG_LIMIT:
        raise NotesError(f"tag {text[:TAG_LIMIT]!r}...: longer than {TAG_LIMIT} characters")
    if any(c.isspace() or c == "," or not c.isprintable() for c in text):
        raise NotesError(f"tag {text!r}: a tag has no spaces, commas or control characters")
    return text


def parse_tags(text: str) -> tuple[str, ...]:
    """'baseline, lr-sweep  best' -> ('baseline', 'lr-sweep', 'best') (commas or spaces between tags)."""
    return tuple(check_tag(t) for t in str(text).replace(",", " ").split())


def _unique(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags in order, a repeat (case-insensitive) dropped."""
    seen: set[str] = set()
    out = []
    for tag in tags:
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    return tuple(out)


def read_notes(run_dir: Path) -> Notes:
    """A run's tags and note (empty when it has no notes.json); never raises: a damaged file gives
    empty notes with :attr:`Notes.error` set."""
    path = Path(run_dir) / NOTES_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read(FILE_LIMIT + 1)
    except FileNotFoundError:
        return Notes()
    except OSError as exc:
        return Notes(error=f"{NOTES_FILE}: cannot read ({exc.strerror or type(exc).__name__})")
    if len(raw) > FILE_LIMIT:
        return Notes(error=f"{NOTES_FILE}: larger than {FILE_LIMIT} bytes, not read")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return Notes(error=f"{NOTES_FILE}: not JSON ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    if not isinstance(data, dict):
        return Notes(error=f"{NOTES_FILE}: not a JSON object")
    tags, note = data.get("tags", []), data.get("note", "")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or not isinstance(note, str):
        return Notes(error=f"{NOTES_FILE}: 'tags' is not a list of texts or 'note' is not a text")
    return Notes(tags=_unique(t for t in tags if t.strip()), note=note)


def write_notes(run_dir: Path, *, tags: Iterable[str] | None = None, note: str | None = None) -> Notes:
    """Set a run's tags and/or note (None: keep what it has) and return what was written.
    NotesError (one line) for a folder that is not a run, a bad tag, too many tags or too long a
    note; OSError when the file cannot be written (the old one is then untouched)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotesError(f"{run_dir}: no such run directory")
    if not is_run_dir(run_dir):
        raise NotesError(f"{run_dir}: not a run directory (no {', '.join(RUN_FILES)})")
    old = read_notes(run_dir)
    # a tag it has already is kept as it is (one edited by hand into notes.json never blocks the others)
    new_tags = old.tags if tags is None else _unique(t if t in old.tags else check_tag(t) for t in tags)
    new_note = old.note if note is None else str(note)
    if len(new_tags) > TAGS_LIMIT:
        raise NotesError(f"{len(new_tags)} tags: at most {TAGS_LIMIT} on a run")
    if len(new_note) > NOTE_LIMIT:
        raise NotesError(f"a note of {len(new_note)} characters: at most {NOTE_LIMIT}")
    path = run_dir / NOTES_FILE
    if old.error and path.is_file():  # keep what a damaged file held rather than write over it
        os.replace(path, path.with_name(NOTES_FILE + DAMAGED_SUFFIX))
    notes = Notes(tags=new_tags, note=new_note)
    text = json.dumps(notes.to_json(), ensure_ascii=False, indent=1) + "\n"
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))
    return notes


def add_tags(run_dir: Path, tags: Iterable[str]) -> Notes:
    """Add ``tags`` to a run's (those it has already are kept once)."""
    return write_notes(run_dir, tags=[*read_notes(run_dir).tags, *tags])


def remove_tags(run_dir: Path, tags: Iterable[str]) -> Notes:
    """Remove ``tags`` from a run's (case-insensitive; a tag it does not have is no error)."""
    gone = {str(t).strip().casefold() for t in tags}
    return write_notes(run_dir, tags=[t for t in read_notes(run_dir).tags if t.casefold() not in gone])
