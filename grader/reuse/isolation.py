"""Isolation groups: which checks may share a sandbox process, and so what each check's verdict depends on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grader.assignments import AssignmentSpec
from grader.judge.execute import Task
from grader.reuse.reads import Reads, check_reads


def isolate(tasks: list[Task], spec: AssignmentSpec, root: Path) -> tuple[list[Task], dict[int, Reads]]:
    """Give each task its isolation group (`Task.component`) and the files its verdict depends on.

    Two checks share a group when the student modules they statically reach overlap; a check that runs no
    student module (a checkpoint's keys) joins the last group. A check that can read everything needs no group of
    its own: whatever it reads or runs at run time stays in its group's processes, and the key of every check of
    that group covers every file (a group's reads are the union of its checks'). A
    group's checks run in sandbox processes no other student code runs in, so each check's verdict depends on
    the files of its whole group (its own reads and those of the checks it shares a process with): that union
    is what the returned `Reads` say, the input of the check's reuse key. Groups without hidden-set checks come
    first, so that their verdicts stream first."""
    if not tasks:
        return tasks, {}
    own = {t.index: check_reads(root, t.plan.ops, spec.checks[t.index].needs, spec.checks[t.index].module)
           for t in tasks}
    parent = {t.index: t.index for t in tasks}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    by_module: dict[str, int] = {}
    for t in tasks:
        r = own[t.index]
        for module in r.modules:
            if module in by_module:
                union(t.index, by_module[module])
            else:
                by_module[module] = t.index
    first = tasks[0].index
    with_modules = [t.index for t in tasks if own[t.index].modules or own[t.index].everything]
    for t in tasks:
        if not own[t.index].modules and not own[t.index].everything:
            union(t.index, with_modules[-1] if with_modules else first)
    groups: dict[int, list[Task]] = {}
    for t in tasks:
        groups.setdefault(find(t.index), []).append(t)
    ordered = sorted(groups.values(), key=lambda g: (any(t.hidden for t in g), min(t.index for t in g)))
    component = {t.index: n for n, g in enumerate(ordered) for t in g}
    reads: dict[int, Reads] = {}
    for g in ordered:
        files = frozenset().union(*(own[t.index].files for t in g))
        modules = frozenset().union(*(own[t.index].modules for t in g))
        whole = any(own[t.index].everything for t in g)
        why = next((own[t.index].why for t in g if own[t.index].everything), "")
        for t in g:
            reads[t.index] = Reads(files=files, modules=modules, everything=whole, why=why)
    return [replace(t, component=component[t.index]) for t in tasks], reads
