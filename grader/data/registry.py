"""The registry of hidden sets: one typed, frozen entry per set; everything else reads it instead of switching on names.

A set is added by adding one entry (`register`): its name, classes in label order, image size and channels, where
its source comes from, the handout's conventions it follows, whether it is a stand-in, how `autograder data
prepare` fetches its source and builds its arrays, and which sizes `load_hidden` may serve. The built-in entries
live with their families (`grader.data.fashion`, `grader.data.dogs_and_cats`, `grader.data.extra`) and are
registered on first use, not at import time.

Adding a set built from files (the test in tests/test_data_registry.py does this)::

    from grader.data.file_sets import FilesSource, file_set, fixed_source, from_shared
    from grader.data.registry import register

    register(file_set(
        name="toy_shapes", classes=("circle", "square"), image_size=(5, 4), channels=1,
        source="shared/toy_shapes/toy.npz", fetch=from_shared("toy_shapes", ("toy.npz",)),
        locate=fixed_source(FilesSource(dir="toy_shapes", files=("toy.npz",), convert=read_toy,
                                        transform="x uint8 (N, 5, 4) -> (N, 1, 5, 4); labels y")),
        conventions=(Convention("label order", "...", quote="...", seed="00N_....txt", line=123),),
    ))

where `read_toy(folder)` returns uint8 images (N, C, H, W) and int64 labels. A built-in set is the same entry
in its family's `entries()`.

An assignment folder declares its own sets without code: a ``[[hidden_sets]]`` table in its assignment.toml
(name, source file, npz keys, layout, classes, size, count, sha256, conventions; see `grader.data.folder_sets`).
They are registered after the code's sets, for the folders the settings name (`names(dirs)`, `entry(name, dirs)`;
`load_hidden`, `prepare` and `status` pass `settings.assignment_dirs`); one whose name is taken is not served and
`declaration_problems` says so.

Each entry has a conventions `version`, bumped whenever a change makes arrays prepared before it mean something
else (label order, orientation, ink, scaling). Its `fingerprint` is written into the arrays' manifest by prepare
and `load_hidden` refuses arrays whose fingerprint is not the entry's (`stale_reason`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.data.catalog import PREPARE_HINT

if TYPE_CHECKING:  # importing augment at run time pulls in PIL
    from grader.data.augment import AugmentConfig

Log = Callable[[str], None]
Size = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Convention:
    """One convention a set's arrays follow, with the handout line it comes from (if any)."""

    topic: str
    """E.g. "label order", "image orientation", "ink", "scaling"."""
    rule: str
    """What the arrays hold, in the instructor's words."""
    quote: str = ""
    """The handout's own words (verbatim, whitespace aside); "" where no handout says it."""
    seed: str = ""
    """The handout (file name in shared/seeds/) the quote is from."""
    line: int = 0
    """1-based line of the quote in the seed; 0 without a quote."""


@dataclass(frozen=True, slots=True)
class PrepareContext:
    """What one `autograder data prepare` run hands each entry's fetch and build."""

    hidden: Path
    shared: Path
    force: bool = False
    log: Log = print
    sizes: tuple[Size, ...] = ((96, 96),)
    """Sizes the resizable sets are built at."""
    fashion_mnist_source: Path = Path("/usr/share/datasets/fashion-mnist")
    allow_download: bool = True
    augment: AugmentConfig | None = None
    workers: int | None = None


Step = Callable[["HiddenSetEntry", PrepareContext], int]
"""A preparation step of one set; returns how many things it (re)built, raises DataUnavailable with the fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HiddenSetEntry:
    """One hidden set: what it is, which conventions it follows, how it is prepared and loaded."""

    name: str
    """As assignment specs name it, e.g. "nist36_like" or "dogs_and_cats/orig"."""
    classes: tuple[str, ...]
    """Class names in label order (label k is classes[k])."""
    image_size: Size
    """(height, width) it is graded at unless an assignment asks for another size (resizable sets only)."""
    channels: int
    source: str
    """Where the source data comes from, in a sentence."""
    conventions: tuple[Convention, ...] = ()
    stand_in: bool = False
    """Built from a stand-in for the course's own test set by default (the manifest says what was built)."""
    fetch: Step
    """Puts the source into hidden_data/ when absent (copy, download, generate); never overwrites one."""
    build: Step
    """From the source data in hidden_data/ to the arrays (skipped when the arrays are current)."""
    needs: tuple[str, ...] = ()
    """Sets whose source must be fetched first (dogs_and_cats/aug is generated from orig)."""
    resizable: bool = False
    """Built (`PrepareContext.sizes`) and loaded at other sizes too; else at image_size only."""
    version: int = 1
    """Conventions version: bumped when arrays prepared before mean something else."""
    history: tuple[str, ...] = ()
    """What each earlier version did differently (history[0] is version 1), for the stale message."""
    legacy_transforms: tuple[str, ...] | None = None
    """Manifests written before fingerprints existed are current only when their "transform" is one of these
    (None: any, for sets whose conventions never changed)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Family-specific parameters (source folder, files, ...)."""
    declared: str = ""
    """For a set an assignment folder declares (grader.data.folder_sets): the sha256 of its declaration, part of
    the fingerprint (a changed declaration makes arrays prepared before stale). "" for the built-in sets."""

    def fingerprint(self) -> str:
        """sha256 of what prepared arrays must agree on: name, conventions version, classes, channels (and a folder
        set's declaration)."""
        body: dict[str, Any] = {"name": self.name, "version": self.version, "classes": list(self.classes),
                                "channels": self.channels}
        if self.declared:
            body["declared"] = self.declared
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def manifest_stamp(self) -> dict[str, Any]:
        """What prepare writes into the manifest (key "set")."""
        return {"version": self.version, "fingerprint": self.fingerprint()}

    def stale_reason(self, manifest: dict[str, Any]) -> str | None:
        """Why arrays with this manifest follow other conventions than this entry, or None when they are current."""
        stamp = manifest.get("set")
        if not isinstance(stamp, dict):  # prepared before fingerprints existed
            if self.legacy_transforms is None or (
                manifest.get("transform") in self.legacy_transforms and manifest.get("classes") == list(self.classes)
            ):
                return None
            return f"they were prepared before conventions version {self.version}{self._changes(1)}"
        if stamp.get("fingerprint") == self.fingerprint():
            return None
        old = stamp.get("version")
        if old == self.version:
            return (f"they were prepared for other classes or channels than the grader's ({len(self.classes)} "
                    f"classes {', '.join(self.classes[:3])}, ..., {self.channels} channel(s))")
        since = old if isinstance(old, int) and 1 <= old < self.version else None
        return (f"they were prepared under conventions version {old}, the grader follows version {self.version}"
                f"{self._changes(since) if since else ''}")

    def _changes(self, since: int) -> str:
        older = self.history[since - 1:self.version - 1]
        return f" (before: {'; '.join(older)})" if older else ""


_entries: dict[str, HiddenSetEntry] | None = None


def _registry() -> dict[str, HiddenSetEntry]:
    global _entries
    if _entries is None:
        from grader.data import dogs_and_cats, extra, fashion

        _entries = {e.name: e for family in (fashion, dogs_and_cats, extra) for e in family.entries()}
    return _entries


def register(entry: HiddenSetEntry, *, replace: bool = False) -> HiddenSetEntry:
    """Add a hidden set (after the built-in ones, in registration order); `replace` to redefine one."""
    entries = _registry()
    if entry.name in entries and not replace:
        raise ValueError(f"hidden set {entry.name!r} is already registered")
    missing = [n for n in entry.needs if n not in entries and n != entry.name]
    if missing:
        raise ValueError(f"hidden set {entry.name!r} needs unknown sets {missing}")
    entries[entry.name] = entry
    return entry


@contextmanager
def registered(*entries: HiddenSetEntry) -> Iterator[None]:
    """Register `entries` for the duration of a with block, then restore the registry as it was (tests)."""
    global _entries
    saved = dict(_registry())
    try:
        for e in entries:
            register(e)
        yield
    finally:
        _entries = saved


Dirs = tuple[Path, ...] | None
"""Further assignment folders whose declared sets count (`GraderSettings.assignment_dirs`); None: the
process-wide setting's."""


def built_in_names() -> tuple[str, ...]:
    """The sets of code (the built-in families and `register`), without those assignment folders declare."""
    return tuple(_registry())


def _all(dirs: Dirs) -> dict[str, HiddenSetEntry]:
    """The code's sets, then the sets the assignment folders declare (grader.data.folder_sets) that clash with
    none before them."""
    entries = dict(_registry())
    declared, _ = _declared(dirs)
    for e in declared:
        entries.setdefault(e.name, e)
    return entries


def _declared(dirs: Dirs) -> tuple[list[HiddenSetEntry], list[str]]:
    """The folder sets that can be registered, and why the others cannot."""
    from grader.data import folder_sets

    if dirs is None:
        from grader.settings import settings

        dirs = settings().assignment_dirs
    found, bad = folder_sets.discover(tuple(Path(d) for d in dirs))
    problems = [str(p) for p in bad]
    taken = dict.fromkeys(_registry(), "built in")
    ok = []
    for d in found:
        name = d.decl.name
        if name in taken:
            by = taken[name]
            problems.append(f"hidden set {name!r} of assignment {d.assignment!r} ({d.folder}): not served, the name "
                            f"is {'a built-in set' if by == 'built in' else f'declared by assignment {by!r} too'}")
            continue
        taken[name] = d.assignment
        ok.append(folder_sets.entry_of(d))
    return ok, problems


def declaration_problems(dirs: Dirs = None) -> list[str]:
    """Why some ``[[hidden_sets]]`` of the assignment folders are not registered (`autograder data status`)."""
    return _declared(dirs)[1]


def get(name: str, dirs: Dirs = None) -> HiddenSetEntry | None:
    return _all(dirs).get(name)


def entry(name: str, dirs: Dirs = None) -> HiddenSetEntry:
    """The entry of set `name`, or ValueError listing the known sets."""
    found = _all(dirs).get(name)
    if found is None:
        raise ValueError(f"unknown hidden set {name!r}; known: {list(names(dirs))}")
    return found


def names(dirs: Dirs = None) -> tuple[str, ...]:
    """The registered sets, in preparation order: the code's, then those the assignment folders declare."""
    return tuple(_all(dirs))


def default_size(name: str, dirs: Dirs = None) -> Size:
    """The image size a set is graded at unless an assignment asks for another."""
    return entry(name, dirs).image_size


def stale_message(e: HiddenSetEntry, folder: Path, manifest: dict[str, Any]) -> str | None:
    """The DataUnavailable message for arrays in `folder` prepared under other conventions, or None."""
    reason = e.stale_reason(manifest)
    if reason is None:
        return None
    return f"hidden set {e.name!r}: the arrays in {folder} are stale: {reason}: {PREPARE_HINT}"
