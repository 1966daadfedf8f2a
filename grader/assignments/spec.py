"""Typed view of an assignment's TOML spec (files, checks, points, thresholds, limits, leaderboard), and where
assignments are: every folder holding an ``assignment.toml``, in this package's folder or in the folders of the
``AUTOGRADER_ASSIGNMENT_DIRS`` setting. An assignment's folder holds its spec, ``reference/`` (the trusted
solution: the submission's files and checkpoints), ``students/<style>/``, ``mutants.toml`` and its scripts."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from grader.judge.params import Params, ParamsError, parse_params

ASSIGNMENTS_DIR = Path(__file__).resolve().parent
"""The built-in assignments: one folder each, holding an ``assignment.toml``."""
SPEC_FILE = "assignment.toml"
GiB = 2**30


class UnknownAssignment(LookupError):
    pass


class InvalidSpec(ValueError):
    """A spec that cannot be graded with (unknown check kind, params that do not validate)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-run sandbox limits and upload limits."""

    memory_bytes: int = 4 * GiB
    pids: int = 256
    cpus: float = 2.0
    wall_s: float = 600.0
    """Wall-clock budget of the whole grading (all sandbox starts together)."""
    import_s: float = 120.0
    """Budget of importing one student module (torch imports take seconds)."""
    build_s: float = 60.0
    """Budget of building a model, loading a checkpoint or a probe forward pass."""
    op_s: float = 20.0
    """Budget of any other single call into student code."""
    predict_s: float = 60.0
    """Least budget of classifying a hidden set (more when the reference, timed on one batch, needs it)."""
    retained_bytes: int = 256 * 2**20
    """What the judge keeps of the sandbox's output in one grading (decoded size, over all restarts)."""
    judge_bytes: int = 2 * GiB
    """Bound on the judge's own memory while it grades (RLIMIT_DATA above what the process uses)."""
    output_bytes: int = 64 * 2**20
    tmpfs_bytes: int = 512 * 2**20
    upload_bytes: int = 100 * 2**20
    max_members: int = 2000
    unpacked_bytes: int = 1 * GiB


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    kind: str
    target: str
    points: float
    module: str = ""
    """Student module the check needs (e.g. "numpy_nn"); its file is `<module>.py`."""
    needs: tuple[str, ...] = ()
    """Submission files the check needs besides the module (e.g. "model.pt")."""
    required: bool = True
    """Whether the lab counts as passed only if this check passes."""
    params: Params = field(default_factory=Params)
    """The kind's typed params (grader.judge.params), validated when the spec loaded."""
    slow: bool = False
    """Graded in the slow phase (hidden-set accuracy), after the quick checks: the kind's default
    (grader.judge.kinds.slow_kind), or the check's own ``slow = true|false`` in assignment.toml."""


@dataclass(frozen=True, slots=True)
class LeaderboardColumn:
    metric: str
    label: str


@dataclass(frozen=True, slots=True)
class Convention:
    """One convention the grader follows (label order, orientation, scaling, shapes, eval mode, ...), with the
    line of the handout (seed) it comes from, quoted verbatim so that a test can find it there."""

    topic: str
    """What it is about, e.g. "label order"."""
    rule: str
    """What the grader does or expects, in the student's words."""
    quote: str
    """The handout's own words (verbatim, whitespace aside)."""
    line: int
    """Line of the quote in the seed file (1-based); 0 with an empty quote where the handout is silent (the rule
    then says what the grader accepts)."""


@dataclass(frozen=True, slots=True)
class Factory:
    """``def NAME(): return <the value>`` made from a notebook that assigns `assigns` in the branch of an
    ``if``/``elif`` whose test names the string `branch` (the handout's experiment loop builds its models so)."""

    name: str
    assigns: str
    branch: str


@dataclass(frozen=True, slots=True)
class AssignmentSpec:
    name: str
    title: str
    files: tuple[str, ...]
    checks: tuple[CheckSpec, ...]
    limits: Limits
    leaderboard_metric: str | None
    leaderboard_columns: tuple[LeaderboardColumn, ...]
    page: str
    """Student-facing description (Markdown): what to submit, what is checked, limits."""
    path: Path
    """The spec file (``<folder>/assignment.toml``)."""
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Descriptions of hand-written layers that layer checks refer to (``[layers.NAME]``)."""
    seed: str = ""
    """File name of the handout in ../shared/seeds the conventions quote."""
    conventions: tuple[Convention, ...] = ()
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Other names a file may have in the zip (shell patterns), e.g. the handout's own file names: an expected
    file that is missing is taken from the one member that matches one of its patterns."""
    factories: tuple[Factory, ...] = ()
    """Functions a notebook submission gets built from its own code when it does not define them."""

    @property
    def student_page(self) -> str:
        """The page with the conventions table appended (Markdown)."""
        if not self.conventions:
            return self.page
        rows = ["", "## Conventions (taken from the handout)", "",
                "| what | the grader | the handout says |", "|---|---|---|"]
        rows += [f"| {_cell(c.topic)} | {_cell(c.rule)} | \"{_cell(c.quote)}\" (line {c.line}) |"
                 for c in self.conventions]
        return self.page.rstrip("\n") + "\n" + "\n".join(rows) + "\n"

    @property
    def folder(self) -> Path:
        """The assignment's folder (spec, reference/, students/, mutants.toml, scripts)."""
        return self.path.parent

    @property
    def reference_dir(self) -> Path:
        """The trusted reference solution: the submission's files (and checkpoints) as a student hands them in."""
        return self.folder / "reference"

    @property
    def max_score(self) -> float:
        return round(sum(c.points for c in self.checks), 4)

    @property
    def required_checks(self) -> frozenset[str]:
        return frozenset(c.id for c in self.checks if c.required)

    @property
    def quick_ids(self) -> tuple[str, ...]:
        """The quick checks' ids (interfaces, layers, gradients, builds, checkpoints), in spec order."""
        return tuple(c.id for c in self.checks if not c.slow)

    @property
    def slow_ids(self) -> tuple[str, ...]:
        """The slow checks' ids (hidden-set accuracy), in spec order."""
        return tuple(c.id for c in self.checks if c.slow)

    @property
    def two_phases(self) -> bool:
        """Whether a grading can be split into a quick and a slow phase (the spec has checks of both)."""
        return bool(self.quick_ids) and bool(self.slow_ids)

    def check(self, check_id: str) -> CheckSpec:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)


_CODE_SPAN = re.compile(r"(`[^`]*`)")
_MARKDOWN_PUNCTUATION = re.compile(r"([\\*_\[\]<&])")


def _cell(text: str) -> str:
    """One Markdown table cell: one line, pipes escaped, and outside `code` Markdown's other special characters
    escaped too, so that a rule or quote shows as written (``__init__``, ``32*4*4``)."""
    parts = _CODE_SPAN.split(" ".join(text.split()))
    return "".join(p if i % 2 else _MARKDOWN_PUNCTUATION.sub(r"\\\1", p) for i, p in enumerate(parts)).replace(
        "|", "\\|")


def make_limits(values: dict[str, Any], base: Limits | None = None) -> Limits:
    """Limits from a mapping (spec or overrides); float fields stay floats, the rest are ints."""
    base = base or Limits()
    floats = {"cpus", "wall_s", "import_s", "build_s", "op_s", "predict_s"}
    known = set(Limits.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {k: float(v) if k in floats else int(v) for k, v in values.items()}
    return replace(base, **changes)


def assignment_folders(dirs: Iterable[Path] | None = None) -> dict[str, Path]:
    """Every assignment's folder by name: the folders holding an assignment.toml in this package's folder and
    in `dirs` (default: the AUTOGRADER_ASSIGNMENT_DIRS setting). A name declared twice is an error."""
    if dirs is None:
        from grader.settings import settings

        dirs = settings().assignment_dirs
    return dict(_discover((ASSIGNMENTS_DIR, *(Path(d).resolve() for d in dirs))))


@cache
def _discover(roots: tuple[Path, ...]) -> tuple[tuple[str, Path], ...]:
    found: dict[str, Path] = {}
    for root in dict.fromkeys(roots):
        for spec_file in sorted(root.glob(f"*/{SPEC_FILE}")):
            name = spec_name(spec_file)
            if name in found:
                raise ValueError(f"assignment {name!r} is declared twice: in {found[name]} and {spec_file.parent}")
            found[name] = spec_file.parent
    return tuple(sorted(found.items()))


def spec_name(spec_file: Path) -> str:
    """The name an assignment.toml declares (``[assignment] name``), or else its folder's (``_`` read as ``-``)."""
    try:
        name = tomllib.loads(spec_file.read_text()).get("assignment", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        name = None
    return name if isinstance(name, str) and name else spec_file.parent.name.replace("_", "-")


def list_assignments(dirs: Iterable[Path] | None = None) -> list[str]:
    return sorted(assignment_folders(dirs))


def load_assignment(name: str, dirs: Iterable[Path] | None = None) -> AssignmentSpec:
    """The spec of the assignment `name` (see assignment_folders for where assignments are)."""
    folders = assignment_folders(dirs)
    if name not in folders:
        raise UnknownAssignment(f"unknown assignment {name!r} (known: {', '.join(sorted(folders))})")
    return _load(folders[name] / SPEC_FILE)


@cache
def _load(path: Path) -> AssignmentSpec:
    return parse_spec(tomllib.loads(path.read_text()), path=path)


def _params(check: dict[str, Any], assignment: str, layers: set[str]) -> Params:
    """The check's params, validated against its kind's model (InvalidSpec names the assignment, check and key)."""
    try:
        return parse_params(check["kind"], dict(check.get("params", {})), layers=layers)
    except ParamsError as exc:
        raise InvalidSpec(f"assignment {assignment!r}, check {check['id']!r} (kind {check['kind']!r}): {exc}") from None


def _slow(check: dict[str, Any], assignment: str) -> bool:
    """The check's own ``slow`` (a bool), else its kind's default (grader.judge.kinds.slow_kind)."""
    if "slow" in check:
        if not isinstance(check["slow"], bool):
            raise InvalidSpec(f"assignment {assignment!r}, check {check['id']!r}: slow is true or false, "
                              f"not {check['slow']!r}")
        return check["slow"]
    from grader.judge.kinds import slow_kind  # the kinds import this module

    return slow_kind(check["kind"])


def parse_spec(raw: dict[str, Any], *, path: Path) -> AssignmentSpec:
    a = raw["assignment"]
    layers = set(raw.get("layers", {}))
    checks = tuple(
        CheckSpec(
            id=c["id"], kind=c["kind"], target=c["target"], points=float(c.get("points", 0.0)),
            module=c.get("module", ""), needs=tuple(c.get("needs", ())),
            required=bool(c.get("required", True)), params=_params(c, a["name"], layers),
            slow=_slow(c, a["name"]),
        )
        for c in raw.get("checks", [])
    )
    ids = [c.id for c in checks]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: duplicate check ids")
    lb = raw.get("leaderboard", {})
    limits = make_limits(raw.get("limits", {}))
    return AssignmentSpec(
        name=a["name"], title=a["title"], files=tuple(a["files"]), checks=checks, limits=limits,
        leaderboard_metric=lb.get("metric"),
        leaderboard_columns=tuple(LeaderboardColumn(metric=c["metric"], label=c["label"])
                                  for c in lb.get("columns", [])),
        page=a.get("page", ""), path=path, layers=dict(raw.get("layers", {})),
        seed=a.get("seed", ""),
        conventions=tuple(Convention(topic=c["topic"], rule=c["rule"], quote=c["quote"], line=int(c["line"]))
                          for c in raw.get("conventions", [])),
        aliases={name: tuple(patterns) for name, patterns in a.get("aliases", {}).items()},
        factories=tuple(Factory(name=f["name"], assigns=f["assigns"], branch=f["branch"])
                        for f in a.get("factories", [])),
    )
