"""Load user objects named in a config: ``"path/to/file.py:Name"`` or ``"package.module:Name"``.

Every failure becomes a one-line :class:`~core.config.ConfigError` that names the config key,
the spec and the cause, so the CLI and the TUI can show it without a traceback.

User code is imported as ``python -m`` would import it from the working directory: while it is
imported, the working directory (and for a file, its folder and the folder above its outermost
package) come first on ``sys.path``, so ``"mypkg.models:Net"`` finds ``./mypkg`` and a model file
finds the project's sibling packages (``from utils.layers import block``). Our own modules are
under ``tui_train``, so a user package named ``core`` or ``utils`` shadows nothing of ours. The
working directory then stays on ``sys.path``, last, for imports the user's code makes later and
for DataLoader workers (they are given the parent's ``sys.path``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tui_train.core.config import ConfigError, is_file_spec
from tui_train.core.errors import one_line

USER_MODULES: dict[str, str] = {}
"""Module name -> source file of every user file loaded so far (to re-load them in spawned workers)."""


RUN_ROOTS: list[str] = []
"""Folders a run's user code was found from when the run started (its working folder and its
PYTHONPATH: :func:`import_roots`, recorded in every checkpoint). eval, export and resume from
another folder import the run's ``package.module:Name`` specs and the project packages its files
import from there too, after the folders of today (:func:`use_run_roots`)."""


def import_roots() -> list[str]:
    """Where user code is found from in this process, as a checkpoint records it: the working
    folder, then PYTHONPATH's folders (absolute)."""
    extra = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys([os.getcwd(), *extra]))


def use_run_roots(roots: Any) -> None:
    """Also look for user code in ``roots`` (a checkpoint's ``import_roots``; folders that are gone
    are skipped): a run started in its project folder, evaluated, exported or resumed from elsewhere."""
    if isinstance(roots, list | tuple):
        for root in roots:
            if isinstance(root, str) and os.path.isdir(root) and root not in RUN_ROOTS:
                RUN_ROOTS.append(root)


@contextlib.contextmanager
def _import_paths(*folders: str):
    """``folders`` first on ``sys.path`` while user code is imported (``python -m`` puts the working
    directory there), then the run's recorded roots (:data:`RUN_ROOTS`); afterwards the working
    directory stays on it, last (see the module doc)."""
    before = list(sys.path)
    folders = tuple(dict.fromkeys([*folders, *RUN_ROOTS]))
    sys.path[:0] = list(folders)
    try:
        yield
    finally:  # sys.path as it was, plus what the user's code added itself, plus the working directory
        ours = set(folders) - set(before)
        added = [p for p in sys.path if p not in before and p not in ours]
        sys.path[:] = before + added
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.append(cwd)


def _package_root(path: Path) -> Path:
    """The folder above the outermost package holding ``path`` (its own folder when that is no
    package): where ``python -m`` would have had to start for the file's absolute imports."""
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def _load_file(target: str, where: str) -> Any:
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        raise ConfigError(f"{where}: file {target} not found" + (f" (looked at {path})" if str(path) != target else ""))
    path = path.resolve()
    # A unique name per file and version: two user files called model.py must not replace each
    # other, an edited file is loaded afresh, and an unchanged one is reused, so objects made
    # from it stay picklable (pickle checks that a class is the one its module holds now).
    st = path.stat()
    digest = hashlib.sha1(f"{path}:{st.st_mtime_ns}:{st.st_size}".encode()).hexdigest()[:10]
    mod_name = f"_tui_train_user_{path.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    try:
        module = _exec_user_file(mod_name, path)
    except BaseException as e:  # user code may raise anything, SystemExit included
        if not isinstance(e, (Exception, SystemExit)):  # Ctrl+C or a signal (core.errors.StartInterrupted) passes
            raise
        raise ConfigError(f"{where}: cannot import {target} ({one_line(e)})") from None
    if module is None:
        raise ConfigError(f"{where}: cannot import {target} (not a Python source file)")
    return module


def _exec_user_file(mod_name: str, path: Path) -> ModuleType | None:
    """Import the file at ``path`` as module ``mod_name`` and record it in USER_MODULES.

    None when it is not a Python source file; whatever the file raises propagates, and the
    half-made module is dropped from ``sys.modules``.
    """
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so dataclasses/pickle inside the file can find their module.
    sys.modules[mod_name] = module
    # The file's folder, the working directory and the project's root go on sys.path while it
    # runs, so it can import its sibling modules and the project's packages (issue 20 defect 7).
    try:
        with _import_paths(str(path.parent), os.getcwd(), str(_package_root(path))):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    USER_MODULES[mod_name] = str(path)
    return module


class _UserFiles(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The parent's user files, importable under the names they had there, each imported only
    when something asks for it (unpickling a user dataset in a spawned DataLoader worker asks for
    the modules its classes live in). Loading every file the parent ever loaded failed on one
    that had since been deleted or that raised, whatever the dataset needed."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(name)
        return importlib.util.spec_from_file_location(name, file, loader=self) if file else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module

    def exec_module(self, module: ModuleType) -> None:
        path = Path(self.files[module.__name__])
        # as _exec_user_file: its folder, the working directory and the project's root on sys.path
        with _import_paths(str(path.parent), os.getcwd(), str(_package_root(path))):
            exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)
        USER_MODULES[module.__name__] = str(path)


_USER_FILES = _UserFiles()


def ensure_user_modules(modules: dict[str, str]) -> None:
    """Make the parent's user files importable under the names they had there (a spawned
    DataLoader worker must find them to unpickle a user dataset); each is imported on first use."""
    _USER_FILES.files.update(modules)
    if _USER_FILES not in sys.meta_path:
        sys.meta_path.append(_USER_FILES)


def _load_module(target: str, where: str) -> Any:
    try:
        with _import_paths(os.getcwd()):  # as python -m: a package in the working directory is found
            return importlib.import_module(target)
    except BaseException as e:  # a module's import may raise anything, SystemExit included
        if not isinstance(e, (Exception, SystemExit)):
            raise
        raise ConfigError(f"{where}: cannot import {target} ({one_line(e)})") from None


def load_object(spec: str, what: str) -> Any:
    """The callable named by ``spec`` (``file.py:Name`` or ``pkg.module:Name``) for config key ``what``.

    Raises ConfigError (one line) when the file or module cannot be imported, the name is
    missing, or the object is not callable.
    """
    where = f"{what} {spec!r}"
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConfigError(f"{where}: expected 'path/to/file.py:Name' or 'package.module:Name'")
    name = name.strip()
    module = _load_file(target, where) if is_file_spec(target) else _load_module(target, where)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{where}: {target} has no attribute {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{where}: {name!r} in {target} is not callable (got {type(obj).__name__})")
    return obj


__all__ = ["USER_MODULES", "ensure_user_modules", "load_object"]
