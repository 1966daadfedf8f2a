"""`autograder data prepare`: build hidden_data/ from the real sources, idempotently, set by set from the registry.

Each registered set's source is put into hidden_data/ when absent (copied, downloaded or generated; an instructor's
substitute is never overwritten; AUG is regenerated whenever ORIG or the augmentation changes, unless the instructor
supplied their own), then its arrays are rebuilt whenever their source listing (names, sizes, mtimes), the
transform, Pillow's version or the set's conventions (`HiddenSetEntry.fingerprint`) change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from grader.data import registry
from grader.data.catalog import DEFAULT_IMAGE_SIZE
from grader.data.dither_key import KEY_FILE, ensure_key
from grader.data.errors import DataUnavailable
from grader.data.fashion import DEBIAN_FASHION_MNIST
from grader.data.registry import Log, PrepareContext
from grader.settings import GraderSettings

if TYPE_CHECKING:  # importing augment at run time pulls in PIL
    from grader.data.augment import AugmentConfig


def prepare(
    *,
    settings: GraderSettings,
    force: bool = False,
    log: Log = print,
    sets: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] = (DEFAULT_IMAGE_SIZE,),
    fashion_mnist_source: Path = DEBIAN_FASHION_MNIST,
    allow_download: bool = True,
    augment: AugmentConfig | None = None,
    workers: int | None = None,
) -> list[str]:
    """Build settings.hidden_data; returns the names of the sets that are ready (in the order asked).

    `sets` defaults to every registered set (the code's, and those the assignment folders of
    `settings.assignment_dirs` and the built-in ones declare). `force` rebuilds AUG and all arrays but never overwrites source
    folders. `sizes` are the (height, width) the resizable sets (image folders) are cached at. Raises
    DataUnavailable (after preparing everything it could) when a source is missing.
    """
    dirs = settings.assignment_dirs
    known = registry.names(dirs)
    wanted = tuple(dict.fromkeys(known if sets is None else sets))
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"unknown hidden sets {unknown}; known: {list(known)}")
    hidden = Path(settings.hidden_data)
    hidden.mkdir(parents=True, exist_ok=True)
    ctx = PrepareContext(
        hidden=hidden, shared=Path(settings.shared_data), force=force, log=log, sizes=tuple(sizes),
        fashion_mnist_source=fashion_mnist_source, allow_download=allow_download, augment=augment, workers=workers,
    )  # fmt: skip
    start, built, ready, errors, failed = time.perf_counter(), 0, [], [], set()
    if ensure_key(hidden):  # never replaced: a new key changes the images every later grading sees
        built += 1
        log(f"{hidden / KEY_FILE}: new secret dither key (keep it with the data; copies of hidden_data/ need it)")

    def attempt(name: str, work: Callable[[], int]) -> bool:
        nonlocal built
        try:
            built += work()
            return True
        except DataUnavailable as exc:
            errors.append(str(exc))
            failed.add(name)
            log(f"{name}: NOT prepared: {exc}")
            return False

    for name in _fetch_order(wanted, dirs):  # every source first (a set's needs before it), then the arrays
        entry = registry.entry(name, dirs)
        if any(n in failed for n in entry.needs):
            failed.add(name)  # its need's error is reported already
        else:
            attempt(name, partial(entry.fetch, entry, ctx))
    for name in wanted:
        entry = registry.entry(name, dirs)
        if name not in failed and attempt(name, partial(entry.build, entry, ctx)):
            ready.append(name)
    if errors:
        raise DataUnavailable("\n".join(errors))
    elapsed = time.perf_counter() - start
    if built == 0:
        log(f"hidden data in {hidden} is up to date ({', '.join(ready)}): nothing to do ({elapsed:.2f} s)")
    else:
        log(f"hidden data in {hidden} prepared ({', '.join(ready)}) in {elapsed:.1f} s")
    return ready


def _fetch_order(wanted: Sequence[str], dirs: registry.Dirs) -> list[str]:
    """The wanted sets and what they need, each need before the sets needing it."""
    order: dict[str, None] = {}

    def visit(name: str) -> None:
        for need in registry.entry(name, dirs).needs:
            if need != name and need not in order:
                visit(need)
        order.setdefault(name)

    for name in wanted:
        visit(name)
    return list(order)
