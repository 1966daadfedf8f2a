"""What a check's student code can read: the static import closure of its modules, or everything.

The rule (decided for content-addressed reuse, grader.reuse): a check can read
  * the submission modules its ops name (``module``, ``fn_module``), and every submission module these import,
    transitively, by plain ``import X`` / ``from X import y`` statements anywhere in their source, and
  * the submission files its ops load (``file``: checkpoints, .npz weights) and its spec's ``needs``;
and nothing else, *provided* every module of that closure is free of the constructs through which code reaches
other files or imports by a computed name: builtins such as ``open``, ``exec``, ``eval``, ``__import__``,
``getattr`` with a computed name; modules such as ``importlib``, ``os``, ``sys``, ``pathlib``, ``pickle``;
attributes such as ``.load``, ``.fromfile``, ``.read_text`` (torch.load, np.load, ...); dunder attributes beyond
a short list (``__subclasses__``, ``__globals__`` lead to everything); relative or star imports. Otherwise -
and also when an op unpickles a whole model (its pickle names the modules it imports), when an import names a
folder, a compiled or sourceless module of the submission, or when any submission module shadows an installed
or standard-library module (the harness imports torch lazily, after the submission folder is on sys.path) - the
check can read **every** file of the submission.

This is sound only together with the engine's isolation rule: checks whose closures are disjoint run in
different sandbox processes (grader.judge.execute, `Task.component`), so no other student code has run in the
process of a check before or while it runs (a module imported for another check cannot patch torch or numpy
under it). The list of constructs errs towards "everything": a false "everything" only costs a re-run.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import symtable
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.harness.op_messages import OpRequest, TorchLoadOp

READING_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "attrgetter", "methodcaller",
    "__builtins__", "__loader__", "__spec__", "__file__", "__path__",
})
"""Builtins and module globals that read files, run computed code or reach the import machinery: flagged where
a name refers to them (a parameter or local called `eval` or `input` does not: see `_builtins_used`)."""
ATTR_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
"""Allowed only with a constant (string) attribute name."""
READING_MODULES = frozenset({
    "builtins", "importlib", "imp", "runpy", "pkgutil", "zipimport", "os", "sys", "io", "pathlib", "shutil", "glob",
    "subprocess", "ctypes", "cffi", "pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "dbm",
    "mmap", "fileinput", "codecs", "tempfile", "linecache", "inspect", "zipfile", "tarfile", "gzip", "bz2", "lzma",
    "sqlite3", "csv", "multiprocessing", "threading", "signal", "socket", "urllib", "requests", "http", "h5py",
    "PIL", "imageio", "cv2", "pandas", "scipy.io", "gc", "types", "code", "codeop", "traceback", "posix",
    "operator", "torchvision.io", "torchvision.datasets", "torch.hub", "torch.package", "torch.serialization",
})
"""Modules whose import alone makes a module "reads everything" (file access, unpickling, introspection)."""
READING_ATTRS = frozenset({
    "load", "loads", "load_inline", "loadtxt", "genfromtxt", "fromfile", "from_file", "fromregex", "memmap",
    "open_memmap", "open", "read", "read_text", "read_bytes", "read_csv", "read_table", "read_pickle", "read_json",
    "read_image", "read_file", "decode_image", "imread", "import_module", "hub", "package", "jit", "datasets",
    "ImageFolder", "DatasetFolder", "DataLoader", "save", "savez", "system", "popen", "modules", "path",
    "npyio", "NpzFile", "DataSource", "serialization", "storage", "UntypedStorage", "TypedStorage", "io",
    "load_library", "attrgetter", "methodcaller", "Path",
}) | READING_MODULES
"""Attribute (and ``from X import`` names) that read files or reach other modules: ``torch.load``, ``np.load``,
``Path.read_text``, ``torchvision.datasets``, ``sys.modules``, ..."""
SAFE_DUNDERS = frozenset({
    "__init__", "__name__", "__qualname__", "__doc__", "__class__", "__call__", "__len__", "__repr__", "__str__",
    "__module__", "__main__", "__future__", "__version__", "__all__", "__getitem__", "__setitem__", "__iter__",
    "__next__", "__enter__", "__exit__", "__eq__", "__hash__", "__contains__", "__add__", "__mul__", "__matmul__",
    "__sub__", "__truediv__", "__neg__", "__post_init__", "__slots__", "__annotations__",
})
"""Dunder names a layer or network may use; any other (``__subclasses__``, ``__globals__``, ``__dict__`` of a
module, ...) can reach every object of the process."""


@dataclass(frozen=True, slots=True)
class Reads:
    """The submission files a check can read (names relative to the submission root), or all of them."""

    files: frozenset[str] = frozenset()
    modules: frozenset[str] = frozenset()
    """The student modules of the closure (the check's isolation group is keyed on these)."""
    everything: bool = False
    why: str = ""
    """When `everything`: the construct that made it so (for logs and tests)."""


def check_reads(root: Path, ops: Iterable[OpRequest], needs: Iterable[str] = (), module: str = "") -> Reads:
    """What a check whose plan has `ops` (and whose spec names `module` and `needs`) can read in `root`."""
    ops = list(ops)
    files = {n for n in needs if n}
    modules = {module} if module else set()
    why = ""
    for op in ops:
        for attr in ("module", "fn_module"):
            name = getattr(op, attr, None)
            if name:
                modules.add(name)
        path = getattr(op, "file", None)
        if path:
            files.add(path)
        if isinstance(op, TorchLoadOp) and op.whole_model_of:
            modules.add(op.whole_model_of)
            why = why or f"{op.file} is unpickled as a whole model"
    if shadow := _shadowing(root):
        why = why or f"{shadow} shadows an installed module"
    closure: set[str] = set()
    todo = sorted(modules)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        source = root / f"{name}.py"
        if not source.is_file():
            continue  # the harness reports a missing module; nothing of it can be read
        imports, dynamic, stars = module_imports(source)
        why = why or (f"{name}.py: {dynamic}" if dynamic else "")
        for star in sorted(stars):
            if "." in star or _resolve(root, star) != "module":
                why = why or f"{name}.py: from {star} import *"
        for imported in sorted(imports):
            kind = _resolve(root, imported)
            if kind == "module":
                todo.append(imported)
            elif kind == "other":
                why = why or f"{name}.py imports {imported!r}, which is not a plain module"
    files |= {f"{name}.py" for name in closure if (root / f"{name}.py").is_file()}
    return Reads(files=frozenset(files), modules=frozenset(closure), everything=bool(why), why=why)


def _resolve(root: Path, top: str) -> str:
    """How the submission resolves the top-level import `top`: "module" (root/top.py), "other" (a folder, a
    compiled or sourceless module of the submission), "" (not from the submission)."""
    if (root / f"{top}.py").is_file():
        return "module"
    if (root / top).exists() or any(root.glob(f"{top}.*")):
        return "other"
    return ""


def _shadowing(root: Path) -> str:
    """A submission module named like a standard-library or installed top-level module, if any."""
    taken = _installed_names()
    for path in sorted(root.iterdir()):
        stem = path.name.split(".", 1)[0]
        if stem in taken and (path.is_dir() or path.suffix in {".py", ".pyc", ".so", ".pyd", ".pth"}):
            return path.name
    return ""


@functools.cache
def _installed_names() -> frozenset[str]:
    names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    names |= set(importlib.metadata.packages_distributions())
    names |= {"sitecustomize", "usercustomize", "__main__"}
    return frozenset(names)


def module_imports(source: Path) -> tuple[set[str], str, set[str]]:
    """(top-level names the module imports, "" or why it can read everything, modules it star-imports)."""
    try:
        tree = ast.parse(source.read_bytes(), filename=source.name)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # it fails to import anyway
        return set(), f"does not parse ({type(exc).__name__})", set()
    imports: set[str] = set()
    stars: set[str] = set()
    nodes = list(_walk_imported(tree))
    called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    for node in nodes:
        why = ""
        if isinstance(node, ast.Import):
            for alias in node.names:
                why = why or _reading_module(alias.name)
                imports.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                return imports, "a relative import", stars
            why = _reading_module(node.module)
            for alias in node.names:
                if alias.name == "*":
                    stars.add(node.module)  # fine only for a module of the submission (check_reads decides)
                elif (alias.name in READING_ATTRS or alias.name in READING_NAMES
                      or _dunder(alias.name) and alias.name not in SAFE_DUNDERS):
                    why = why or f"from {node.module} import {alias.name}"
            imports.add(node.module.split(".")[0])
        elif isinstance(node, ast.Name):
            if node.id == "__name__" and not isinstance(node.ctx, ast.Load):
                why = "assigns __name__"
            elif _dunder(node.id) and node.id not in SAFE_DUNDERS:
                why = f"uses {node.id}"
            elif node.id in ATTR_CALLS and id(node) not in called:
                why = f"passes {node.id} around"
        elif isinstance(node, ast.Attribute):
            if node.attr in READING_ATTRS or _dunder(node.attr) and node.attr not in SAFE_DUNDERS:
                why = f"uses .{node.attr}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTR_CALLS:
            name = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or (
                    name.value in READING_ATTRS or _dunder(name.value)):
                why = f"{node.func.id} with a computed or unsafe name"
        if why:
            return imports, why, stars
    if used := _builtins_used(tree):
        return imports, f"uses {sorted(used)[0]}", stars
    return imports, "", stars


def _dunder(name: str) -> bool:
    """A special name (``__x__``); a private ``__x`` is only name-mangled."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _builtins_used(tree: ast.Module) -> set[str]:
    """The READING_NAMES the module refers to as builtins (or as module globals it never binds), by its symbol
    tables: a function's parameter or local of that name is not one."""
    stripped = ast.Module(body=[s for s in tree.body if not _is_main_guard(s)], type_ignores=[])
    try:
        table = symtable.symtable(ast.unparse(stripped), "<module>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return set(READING_NAMES)
    bound = {n for n in READING_NAMES if (sym := _lookup(table, n)) is not None
             and (sym.is_assigned() or sym.is_imported() or sym.is_namespace())}
    used: set[str] = set()
    todo = [table]
    while todo:
        t = todo.pop()
        todo.extend(t.get_children())
        for sym in t.get_symbols():
            name = sym.get_name()
            if name in READING_NAMES and name not in bound and sym.is_referenced() and (
                    t.get_type() == "module" or sym.is_global()):
                used.add(name)
    return used


def _lookup(table: symtable.SymbolTable, name: str) -> symtable.Symbol | None:
    try:
        return table.lookup(name)
    except KeyError:
        return None


def _walk_imported(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node of the module but the bodies of its top-level ``if __name__ == "__main__":`` blocks, which do
    not run when the harness imports it (as a module of its own name; assigning __name__ is refused above)."""
    for stmt in tree.body:
        if _is_main_guard(stmt):
            assert isinstance(stmt, ast.If)
            yield stmt.test
            for other in stmt.orelse:
                yield from ast.walk(other)
        else:
            yield from ast.walk(stmt)


def _is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    t = stmt.test
    return (isinstance(t.left, ast.Name) and t.left.id == "__name__" and len(t.ops) == 1
            and isinstance(t.ops[0], ast.Eq) and len(t.comparators) == 1
            and isinstance(t.comparators[0], ast.Constant) and t.comparators[0].value == "__main__")


def _reading_module(dotted: str) -> str:
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in READING_MODULES:
            return f"imports {dotted}"
    if any(p in READING_ATTRS for p in parts[1:]):
        return f"imports {dotted}"
    return ""
