"""`autograder assignment check NAME|FOLDER`: validate an assignment folder without grading anything.

Reports every problem found, one sentence each: a spec that does not parse, unknown check kinds, duplicate
check ids, checks naming a module the submission does not have, files the reference or a check needs that are
missing, points that do not add up to the declared total (``[assignment] points``), a missing seed (handout),
mutants that edit files the submission does not have, the hidden sets the folder declares (``[[hidden_sets]]``:
tables that do not load, a missing source, another file than declared, missing npz keys, another shape, count or
label range, a built-in set's name) and checks that name a hidden set no one declares.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from grader.assignments.spec import SPEC_FILE, AssignmentSpec, assignment_folders, parse_spec

REFERENCE = "reference"


def find_folder(name_or_folder: str, dirs: tuple[Path, ...] = ()) -> Path:
    """The folder of a discovered assignment, or `name_or_folder` itself when it is a folder with a spec."""
    path = Path(name_or_folder)
    if (path / SPEC_FILE).is_file():
        return path
    folders = assignment_folders(dirs)
    if name_or_folder in folders:
        return folders[name_or_folder]
    raise LookupError(f"no assignment {name_or_folder!r}: neither a folder holding {SPEC_FILE} nor one of "
                      f"{', '.join(sorted(folders))}")


def check_folder(folder: Path, *, seeds: Path | None = None, shared: Path | None = None) -> list[str]:
    """Every problem of the assignment in `folder` (empty: fine). `seeds` is where handouts are looked for, `shared`
    the shared data folder ("shared:" sources of hidden sets; default: the settings')."""
    from grader.judge.kinds import KINDS  # the judge's kinds: imported on use, not when specs load

    spec_file = folder / SPEC_FILE
    try:
        raw: dict[str, Any] = tomllib.loads(spec_file.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{spec_file}: cannot be read ({exc})"]
    except tomllib.TOMLDecodeError as exc:
        return [f"{spec_file}: not valid TOML ({exc})"]
    problems: list[str] = []
    checks = [c for c in raw.get("checks", []) if isinstance(c, dict)]
    for cid, n in Counter(str(c.get("id")) for c in checks).items():
        if n > 1:
            problems.append(f"check id {cid!r} is used by {n} checks (ids must be unique)")
    for c in checks:
        if c.get("kind") not in KINDS:
            problems.append(f"check {c.get('id')!r}: unknown kind {c.get('kind')!r} "
                            f"(known: {', '.join(sorted(KINDS))})")
    if problems:  # parse_spec would stop at the first of these; report them all first
        return problems
    try:
        spec = parse_spec(raw, path=spec_file)
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        return [f"{spec_file}: the spec does not load: {detail}"]
    problems += _files(spec)
    problems += _points(spec, raw.get("assignment", {}).get("points"))
    problems += _seed(spec, seeds)
    problems += _mutants(spec)
    problems += _hidden_sets(spec, raw, shared)
    return problems


def _hidden_sets(spec: AssignmentSpec, raw: dict[str, Any], shared: Path | None) -> list[str]:
    from grader.data import folder_sets, registry
    from grader.settings import settings

    cfg = settings()
    problems = folder_sets.problems(raw, assignment=spec.name, folder=spec.folder,
                                    shared=Path(cfg.shared_data) if shared is None else shared)
    own = {d.decl.name for d in folder_sets.declarations(raw, assignment=spec.name, folder=spec.folder)[0]}
    known = set(registry.names(cfg.assignment_dirs)) | own
    for c in raw.get("checks", []):
        for name in dict.fromkeys(_hidden_refs(c.get("params", {}))):
            if name not in known:
                problems.append(f"check {c.get('id')!r}: hidden set {name!r} is neither built in nor declared "
                                f"([[hidden_sets]]) by an assignment (known: {', '.join(sorted(known))})")
    return problems


def _hidden_refs(params: Any) -> list[str]:
    """The hidden sets a check's params name: ``{ data = "set" }`` arguments of its steps, ``hidden = "set"`` of
    its datasets."""
    if isinstance(params, list):
        return [n for v in params for n in _hidden_refs(v)]
    if not isinstance(params, dict):
        return []
    own = [v for k, v in params.items() if k in ("data", "hidden") and isinstance(v, str)]
    return own + [n for v in params.values() for n in _hidden_refs(v)]


def _modules(spec: AssignmentSpec) -> set[str]:
    """The modules a submission has: its .py files and notebooks (read as modules of the same name)."""
    return {Path(f).stem for f in spec.files if f.endswith((".py", ".ipynb"))}


def _files(spec: AssignmentSpec) -> list[str]:
    problems = []
    ref = spec.reference_dir
    if not ref.is_dir():
        return [f"the reference solution's folder {ref} is missing"]
    problems += [f"the reference solution lacks {f} (expected in {ref})" for f in spec.files if not (ref / f).is_file()]
    modules = _modules(spec)
    for c in spec.checks:
        for module in dict.fromkeys(m for m in (c.module, getattr(c.params, "module", None)) if m):
            if module not in modules:
                problems.append(f"check {c.id!r}: module {module!r} is none of the submission's files "
                                f"({', '.join(spec.files)})")
            elif not (ref / f"{module}.py").is_file():
                problems.append(f"check {c.id!r}: the reference has no {module}.py (the judge runs it) in {ref}")
        for need in c.needs:
            if need not in spec.files:
                problems.append(f"check {c.id!r}: needs {need!r}, which is not one of the submission's files "
                                f"({', '.join(spec.files)})")
    return problems


def _points(spec: AssignmentSpec, declared: Any) -> list[str]:
    if declared is None:
        return []
    if not isinstance(declared, int | float) or isinstance(declared, bool):
        return [f"[assignment] points must be a number, not {declared!r}"]
    if abs(spec.max_score - float(declared)) > 1e-6:
        return [f"the checks' points add up to {spec.max_score:g}, not the declared {declared:g}"]
    return []


def _seed(spec: AssignmentSpec, seeds: Path | None) -> list[str]:
    if not spec.seed:
        return []
    if seeds is None:
        from grader.settings import settings

        seeds = Path(settings().shared_data).parent / "seeds"
    path = seeds / spec.seed
    return [] if path.is_file() else [f"the seed (handout) {spec.seed!r} is not in {seeds}"]


def _mutants(spec: AssignmentSpec) -> list[str]:
    path = spec.folder / "mutants.toml"
    if not path.is_file():
        return []
    try:
        mutants = tomllib.loads(path.read_text()).get("mutants", [])
    except tomllib.TOMLDecodeError as exc:
        return [f"{path}: not valid TOML ({exc})"]
    targets = {c.target for c in spec.checks}
    problems = []
    for m in mutants:
        name = m.get("name", "?")
        if m.get("target") not in targets:
            problems.append(f"mutant {name!r}: target {m.get('target')!r} is no check's target")
        edited = [m.get("replace", {}).get("file"), *m.get("swap", {}).values()]
        problems += [f"mutant {name!r}: {f!r} is not one of the submission's files"
                     for f in edited if f is not None and f not in spec.files]
    return problems
