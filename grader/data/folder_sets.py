"""Hidden sets an assignment folder declares itself (``[[hidden_sets]]`` in its assignment.toml), without code.

A declared set is a registry entry like the built-in ones (`grader.data.registry`): `autograder data prepare`
copies its source into hidden_data/ and builds its arrays, `autograder data status` shows it, `load_hidden` serves
it and refuses its arrays once the declaration changed, and `autograder assignment check` validates it
(`problems`). The source is one npz file, shipped in the assignment's folder or under the shared data folder, which
prepare copies into hidden_data/declared/<name>/::

    [[hidden_sets]]
    name = "tiny_blobs"              # as checks name it: { data = "tiny_blobs" }
    source = "data/tiny_blobs.npz"   # in this folder; "shared:DIR/FILE.npz" for one under AUTOGRADER_SHARED_DATA
    format = "npz"
    images = "x"                     # the npz key of the images: integers 0..255
    labels = "y"                     # the npz key of the labels: 0..len(classes)-1
    layout = "NHW"                   # how the images are stored: NCHW, NHW, NHWC, or NF (rows of C*H*W pixels)
    transposed = false               # stored with height and width swapped (as NIST36 stores its images)
    classes = ["dark", "light"]      # in label order
    image_size = [4, 4]              # (height, width) the arrays hold, after the layout's reshaping
    channels = 1
    count = 24                       # how many images the file holds
    sha256 = "..."                   # of the source file: a different file is refused, a new one needs a new sha256
    version = 1                      # conventions version: bump when arrays prepared before mean something else
    stand_in = false                 # a stand-in for the course's own test set
    [[hidden_sets.conventions]]
    topic = "label order"
    rule = "0 is dark, 1 is light"
    quote = "..."                    # the handout's words at `line` of the spec's seed (optional)
    line = 12

The set's fingerprint covers the whole declaration: arrays prepared under another one are stale, and
`load_hidden` says to run `autograder data prepare`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tomllib
import zipfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grader.data import stamps
from grader.data.errors import DataUnavailable
from grader.data.file_sets import FilesSource, file_set, fixed_source
from grader.data.registry import Convention, HiddenSetEntry, PrepareContext

SHARED_PREFIX = "shared:"
SOURCES_DIR = "declared"
"""Folder of hidden_data/ holding the declared sets' source copies (declared/<name>/<file>), apart from the built-in
sets' source folders (a declared set named like one of those must not change what it is built from)."""
SET_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*")
"""Set names: lower-case words joined by "/" (e.g. "tiny_blobs", "course/test"), used as folder names."""
LAYOUTS = {"NCHW": "(N, C, H, W)", "NHW": "(N, H, W)", "NHWC": "(N, H, W, C)", "NF": "(N, C*H*W)"}


class _Decl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ConventionDecl(_Decl):
    topic: str = Field(min_length=1)
    rule: str = Field(min_length=1)
    quote: str = ""
    line: int = Field(0, ge=0)


class HiddenSetDecl(_Decl):
    """One ``[[hidden_sets]]`` table, validated (unknown keys, missing ones and wrong types are errors)."""

    name: str
    source: str = Field(min_length=1)
    format: Literal["npz"] = "npz"
    images: str = "images"
    labels: str = "labels"
    layout: Literal["NCHW", "NHW", "NHWC", "NF"] = "NCHW"
    transposed: bool = False
    classes: list[str] = Field(min_length=1)
    image_size: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
    channels: int = Field(1, ge=1, le=4)
    count: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    version: int = Field(1, ge=1)
    history: list[str] = []
    stand_in: bool = False
    about: str = ""
    """Where the data comes from, in a sentence (shown by `autograder data status` and on the entry)."""
    conventions: list[ConventionDecl] = []

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SET_NAME.fullmatch(v) or ".." in v:
            raise ValueError(f"{v!r} is not a set name (lower-case letters, digits, _ . -, parts joined by /)")
        return v

    @field_validator("classes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("class names repeat")
        return v

    @field_validator("source")
    @classmethod
    def _relative(cls, v: str) -> str:
        path = Path(v.removeprefix(SHARED_PREFIX))
        if path.is_absolute() or ".." in path.parts or not path.name:
            raise ValueError(f"{v!r}: a source is a path inside the assignment's folder (or, with "
                             f"{SHARED_PREFIX!r}, inside the shared data folder), without ..")
        return v

    @property
    def shared(self) -> bool:
        return self.source.startswith(SHARED_PREFIX)

    @property
    def file(self) -> str:
        """The source's file name (also its name in hidden_data/<set name>/)."""
        return Path(self.source.removeprefix(SHARED_PREFIX)).name

    def source_path(self, folder: Path, shared: Path) -> Path:
        return shared / self.source.removeprefix(SHARED_PREFIX) if self.shared else folder / self.source

    def digest(self) -> str:
        """sha256 of the declaration: part of the set's fingerprint."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def transform(self) -> str:
        """What the build does, in words (part of the arrays' cache key and manifest)."""
        h, w = self.image_size
        steps = [f"npz {self.images!r} {LAYOUTS[self.layout]} as uint8"]
        if self.transposed:
            steps.append("height and width swapped back")
        steps.append(f"-> (N, {self.channels}, {h}, {w}); labels {self.labels!r} as int64; source sha256 {self.sha256}")
        return ", ".join(steps)


@dataclass(frozen=True, slots=True)
class Declared:
    """A declared set, where it was declared."""

    assignment: str
    folder: Path
    decl: HiddenSetDecl
    seed: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    """A ``[[hidden_sets]]`` table that is not registered, and why."""

    assignment: str
    folder: Path
    name: str
    message: str

    def __str__(self) -> str:
        return f"hidden set {self.name!r} of assignment {self.assignment!r} ({self.folder}): {self.message}"


# --- reading declarations -----------------------------------------------------------------------------------


def declarations(raw: dict[str, Any], *, assignment: str, folder: Path) -> tuple[list[Declared], list[Problem]]:
    """The valid ``[[hidden_sets]]`` tables of a parsed spec, and a problem for each invalid one."""
    tables = raw.get("hidden_sets", [])
    if not isinstance(tables, list):
        return [], [Problem(assignment, folder, "?", "hidden_sets must be an array of tables ([[hidden_sets]])")]
    head = raw.get("assignment")
    seed = head.get("seed", "") if isinstance(head, dict) else ""
    found, problems = [], []
    for i, t in enumerate(tables, 1):
        name = str(t.get("name", f"#{i}")) if isinstance(t, dict) else f"#{i}"
        try:
            found.append(Declared(assignment, folder, HiddenSetDecl.model_validate(t),
                                  seed if isinstance(seed, str) else ""))
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'table'}: {e['msg']}" for e in exc.errors())
            problems.append(Problem(assignment, folder, name, f"the [[hidden_sets]] table does not load: {errors}"))
    return found, problems


@cache
def _read_spec(spec_file: Path, mtime_ns: int, size: int) -> dict[str, Any] | None:
    try:
        return tomllib.loads(spec_file.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # `autograder assignment check` says why; a spec that does not parse declares nothing


def discover(dirs: tuple[Path, ...]) -> tuple[list[Declared], list[Problem]]:
    """Every assignment folder's declared sets (built-in folders and `dirs`), in assignment order."""
    from grader.assignments.spec import SPEC_FILE, assignment_folders

    try:
        folders = assignment_folders(dirs)
    except ValueError:  # an assignment declared twice: grading refuses it; its sets are not served meanwhile
        return [], []
    found: list[Declared] = []
    problems: list[Problem] = []
    for assignment, folder in folders.items():
        spec_file = folder / SPEC_FILE
        try:
            st = spec_file.stat()
        except OSError:
            continue
        raw = _read_spec(spec_file, st.st_mtime_ns, st.st_size)
        if raw is None or "hidden_sets" not in raw:
            continue
        more, bad = declarations(raw, assignment=assignment, folder=folder)
        found += more
        problems += bad
    return found, problems


# --- registry entries ---------------------------------------------------------------------------------------


def entry_of(d: Declared) -> HiddenSetEntry:
    """The registry entry of a declared set."""
    decl = d.decl
    where = (f"{decl.source.removeprefix(SHARED_PREFIX)} in the shared data folder" if decl.shared
             else f"{decl.source} in the folder of assignment {d.assignment} ({d.folder})")
    src = FilesSource(dir=source_dir(decl), files=(decl.file,), transform=decl.transform(),
                      convert=lambda root: convert(decl, root / decl.file), stand_in=decl.stand_in,
                      note=" (a stand-in)" if decl.stand_in else "")
    base = file_set(
        name=decl.name, classes=tuple(decl.classes), image_size=(decl.image_size[0], decl.image_size[1]),
        channels=decl.channels, source=f"{decl.about + ': ' if decl.about else ''}{where}",
        locate=fixed_source(src), fetch=lambda entry, ctx: fetch(d, ctx), stand_in=decl.stand_in,
        version=decl.version, history=tuple(decl.history),
        conventions=tuple(Convention(c.topic, c.rule, c.quote, d.seed if c.quote else "", c.line)
                          for c in decl.conventions),
    )  # fmt: skip
    return replace(base, declared=decl.digest(), extra={"assignment": d.assignment, "folder": str(d.folder)})


def source_dir(decl: HiddenSetDecl) -> str:
    """The folder under hidden_data/ the set's source is copied into."""
    return f"{SOURCES_DIR}/{decl.name}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(d: Declared, ctx: PrepareContext) -> int:
    """Copy the declared source into hidden_data/<name>/ unless the copy there is the declared file already."""
    decl = d.decl
    src = decl.source_path(d.folder, ctx.shared)
    dest = ctx.hidden / source_dir(decl)
    fix = f"fix [[hidden_sets]] {decl.name!r} in {d.folder / 'assignment.toml'}, then run `autograder data prepare`"
    if (dest / decl.file).is_file() and sha256_of(dest / decl.file) == decl.sha256:
        return 0
    if not src.is_file():
        raise DataUnavailable(f"{decl.name}: its source {src} is missing: {fix}")
    got = sha256_of(src)
    if got != decl.sha256:
        raise DataUnavailable(f"{decl.name}: {src} has sha256 {got}, the declaration says {decl.sha256}: {fix}")
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{decl.file}.tmp"
    shutil.copy2(src, tmp)
    tmp.replace(dest / decl.file)
    origin = f"copied from {src} (declared by assignment {d.assignment})"
    (dest / stamps.SOURCE_STAMP).write_text(json.dumps({"origin": origin}, indent=1) + "\n")
    ctx.log(f"{decl.name}: {origin}")
    return 1


def read(decl: HiddenSetDecl, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, C, H, W), labels int64 (N,)) from the declared npz, or ValueError saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in (decl.images, decl.labels) if k not in keys]
            if missing:
                raise ValueError(f"{path.name} has no key {' or '.join(map(repr, missing))} (it has "
                                 f"{', '.join(map(repr, sorted(keys))) or 'none'})")
            x, y = z[decl.images], z[decl.labels]
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path.name} is not a readable npz ({exc})") from exc
    (h, w), c = decl.image_size, decl.channels
    stored = {"NCHW": (c, w, h) if decl.transposed else (c, h, w), "NHW": (w, h) if decl.transposed else (h, w),
              "NHWC": (w, h, c) if decl.transposed else (h, w, c), "NF": (c * h * w,)}[decl.layout]
    if decl.layout == "NHW" and c != 1:
        raise ValueError(f"layout NHW holds one channel, the declaration says channels = {c}")
    if x.ndim != 1 + len(stored) or tuple(x.shape[1:]) != stored:
        raise ValueError(f"{decl.images!r} has shape {tuple(x.shape)}; layout {decl.layout} with image_size "
                         f"{decl.image_size} and {c} channel(s){' (transposed)' if decl.transposed else ''} means "
                         f"(N, {', '.join(map(str, stored))})")
    if len(x) != decl.count or y.shape != (len(x),):
        raise ValueError(f"{path.name} holds {len(x)} images and labels of shape {tuple(y.shape)}; the declaration "
                         f"says count = {decl.count}")
    if x.dtype.kind not in "ui" or (x.size and (x.min() < 0 or x.max() > 255)):
        raise ValueError(f"{decl.images!r} must hold integers 0..255 ({x.dtype} "
                         f"{'' if not x.size or x.dtype.kind not in 'uif' else f'{x.min()}..{x.max()}'})")
    if y.dtype.kind not in "ui" or (y.size and (y.min() < 0 or y.max() >= len(decl.classes))):
        raise ValueError(f"{decl.labels!r} must hold integers 0..{len(decl.classes) - 1} (one per class)")
    images = x.astype(np.uint8)
    if decl.layout == "NF":
        images = images.reshape(len(x), c, w, h).transpose(0, 1, 3, 2) if decl.transposed \
            else images.reshape(len(x), c, h, w)
    elif decl.layout == "NHW":
        images = images[:, None]
        images = images.transpose(0, 1, 3, 2) if decl.transposed else images
    elif decl.layout == "NHWC":
        images = images.transpose(0, 3, 2, 1) if decl.transposed else images.transpose(0, 3, 1, 2)
    elif decl.transposed:
        images = images.transpose(0, 1, 3, 2)
    return np.ascontiguousarray(images), y.astype(np.int64)


def convert(decl: HiddenSetDecl, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The build's conversion: `read`, its problems as DataUnavailable with the fix."""
    if sha256_of(path) != decl.sha256:
        raise DataUnavailable(f"{decl.name}: {path} is not the declared file (sha256 differs): run "
                              "`autograder data prepare`")
    try:
        return read(decl, path)
    except ValueError as exc:
        raise DataUnavailable(f"{decl.name}: {exc}: fix the file or its [[hidden_sets]] declaration, then run "
                              "`autograder data prepare`") from None


def problems(raw: dict[str, Any], *, assignment: str, folder: Path, shared: Path) -> list[str]:
    """What `autograder assignment check` says about a folder's ``[[hidden_sets]]`` (empty: fine): tables that do
    not load, names of built-in sets or of another assignment's set, sources that are missing, not the declared
    file, without the declared keys, of another shape, count or label range than declared."""
    from grader.data import registry

    found, bad = declarations(raw, assignment=assignment, folder=folder)
    out = [f"hidden set {p.name!r}: {p.message}" for p in bad]
    names = [d.decl.name for d in found]
    out += [f"hidden set {n!r} is declared {names.count(n)} times" for n in dict.fromkeys(names) if names.count(n) > 1]
    others = {d.decl.name: d.assignment for d in discover(_dirs())[0] if d.assignment != assignment}
    for d in found:
        decl = d.decl
        if decl.name in registry.built_in_names():
            out.append(f"hidden set {decl.name!r} is the name of a built-in set (choose another name)")
            continue
        if decl.name in others:
            out.append(f"hidden set {decl.name!r} is declared by assignment {others[decl.name]!r} too")
        path = decl.source_path(folder, shared)
        if not path.is_file():
            out.append(f"hidden set {decl.name!r}: its source {path} is missing")
            continue
        got = sha256_of(path)
        if got != decl.sha256:
            out.append(f"hidden set {decl.name!r}: {path} has sha256 {got}, not the declared {decl.sha256}")
        try:
            read(decl, path)
        except ValueError as exc:
            out.append(f"hidden set {decl.name!r}: {exc}")
    return out


def _dirs() -> tuple[Path, ...]:
    from grader.settings import settings

    return settings().assignment_dirs
