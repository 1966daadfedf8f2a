"""`autograder data status`: every registered set, and whether load_hidden would serve it (and if not, why); and
each ``[[hidden_sets]]`` table of an assignment folder that is not served (it does not load, or its name is taken)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.data import registry
from grader.data.arrays import read_manifest
from grader.data.catalog import PREPARE_HINT, arrays_dir
from grader.data.errors import DataUnavailable
from grader.data.hidden import load_hidden
from grader.settings import GraderSettings


@dataclass(frozen=True, slots=True)
class SetStatus:
    name: str
    size: tuple[int, int]
    classes: int
    version: int
    ready: bool
    detail: str
    """"N images" (", a stand-in" when it is one) or the DataUnavailable message saying what to do."""

    def line(self) -> str:
        state = "ready" if self.ready else "NOT READY"
        return (f"{self.name}\t{self.size[0]}x{self.size[1]}\t{self.classes} classes\tconventions v{self.version}\t"
                f"{state}: {self.detail}")


def status(settings: GraderSettings) -> list[SetStatus]:
    """The state of each registered set at its default size (checked exactly as a grading loads it)."""
    out = []
    dirs = settings.assignment_dirs
    for name in registry.names(dirs):
        entry = registry.entry(name, dirs)
        try:
            hidden = load_hidden(settings, name)
            ready, detail = True, f"{len(hidden)} images" + (", a stand-in" if hidden.stand_in else "")
            manifest = read_manifest(arrays_dir(Path(settings.hidden_data), name, entry.image_size)) or {}
            if "set" not in manifest:
                detail += f" (prepared before conventions fingerprints: {PREPARE_HINT} to stamp it)"
        except DataUnavailable as exc:
            ready, detail = False, str(exc)
        out.append(SetStatus(name=name, size=entry.image_size, classes=len(entry.classes), version=entry.version,
                             ready=ready, detail=detail))
    for problem in registry.declaration_problems(dirs):  # [[hidden_sets]] tables that are not served
        out.append(SetStatus(name="[[hidden_sets]]", size=(0, 0), classes=0, version=0, ready=False, detail=problem))
    return out
