"""The trusted reference solution's modules, loaded by file path from an assignment's reference/ folder (no
package and no sys.path entry needed, so an assignment folder anywhere works)."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
import threading
from pathlib import Path
from types import ModuleType

_private = itertools.count()
_lock = threading.Lock()


def module_file(reference_dir: Path, name: str) -> Path:
    """The file of the reference module `name` (``<reference_dir>/<name>.py``)."""
    return Path(reference_dir) / f"{name}.py"


def shared_name(reference_dir: Path, name: str) -> str:
    """The sys.modules key of the shared copy: one per folder and module (two assignments' nn.py differ)."""
    digest = hashlib.sha1(str(Path(reference_dir).resolve()).encode()).hexdigest()[:12]
    return f"_reference_{digest}_{name}"


def reference_module(reference_dir: Path, name: str) -> ModuleType:
    """The reference module `name`, executed once per process and kept in sys.modules (what the judge runs the
    reference's op scripts against)."""
    key = shared_name(reference_dir, name)
    with _lock:
        module = sys.modules.get(key)
        if module is None:
            module = _execute(module_file(reference_dir, name), key, register=True)
    return module


def private_module(reference_dir: Path, name: str) -> ModuleType:
    """A fresh copy of the reference module `name` (its own globals), e.g. to replace its helpers."""
    return _execute(module_file(reference_dir, name), f"_judge_units_{name}_{next(_private)}", register=False)


def _execute(path: Path, key: str, *, register: bool) -> ModuleType:
    if not path.is_file():
        raise ModuleNotFoundError(f"the reference has no module {path.stem!r} ({path} is missing)", name=path.stem)
    spec = importlib.util.spec_from_file_location(key, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if register:  # dataclasses and pickling look their module up there
        sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(key, None)
        raise
    return module
