"""Run checks' op scripts: the student's in the sandbox (restarting it after hangs and crashes), the
reference's in-process (trusted code)."""

from __future__ import annotations

import importlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.harness import wire
from grader.harness.ops import Interpreter, error_info
from grader.judge.context import GroupRun, Inputs, OpResult, Plan
from grader.sandbox import Outcome, RunLimits, SandboxProcess
from grader.sandbox.bwrap import Job
from grader.sandbox.cgroups import CgroupBackend, Usage

HARNESS_DIR = Path(__file__).resolve().parent.parent / "harness"
STARTUP_TIMEOUT = 60.0
MAX_STARTS = 8


class GraderFault(RuntimeError):
    """The harness itself could not start: the grader's problem, never the student's."""


@dataclass(frozen=True, slots=True)
class Task:
    """One check's plan as it is sent to the sandbox."""

    index: int
    check_id: str
    plan: Plan


@dataclass(slots=True)
class SandboxStats:
    starts: int = 0
    peak_memory_bytes: int = 0
    seconds: float = 0.0
    kills: dict[str, int] = field(default_factory=dict)
    """Sandbox processes ended by the grader or the kernel, by cause (timeout, memory, pids, crash, ...)."""


def run_in_sandbox(
    tasks: list[Task],
    *,
    inputs: Inputs,
    job_dir: Path,
    submission: Path,
    limits: RunLimits,
    backend: CgroupBackend,
    bwrap: str,
    python: Path,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[int, GroupRun], SandboxStats]:
    """Run every task's ops against the student's code; each task gets a `GroupRun`, never an exception."""
    in_dir = job_dir / "in"
    in_dir.mkdir(parents=True)
    np.savez(in_dir / "inputs.npz", **inputs.arrays)
    for name, images in inputs.datasets.items():
        np.save(in_dir / f"{name}.npy", images, allow_pickle=False)
    runs: dict[int, GroupRun] = {t.index: GroupRun() for t in tasks}
    stats = SandboxStats()
    t_start = time.monotonic()
    wall_deadline = t_start + limits.wall_s
    poisoned: dict[str, dict[str, Any]] = {}  # module -> the failure of its import (hang, crash)
    pending = list(tasks)
    job = Job(harness=HARNESS_DIR, submission=submission, inputs=in_dir)
    while pending:
        for t in list(pending):  # tasks whose module could not even be imported fail the same way
            mods = {op["module"] for op in t.plan.ops if op["op"] == "import"}
            bad = next((poisoned[m] for m in mods if m in poisoned), None)
            if bad is not None:
                first_import = next(i for i, op in enumerate(t.plan.ops) if op["op"] == "import" and op["module"] in poisoned)
                runs[t.index].results = [OpResult(value=None) for _ in range(first_import)] + [OpResult(error=bad)]
                pending.remove(t)
        if not pending:
            break
        if stats.starts >= MAX_STARTS or time.monotonic() >= wall_deadline:
            why = (f"was not run: the grading time limit of {limits.wall_s:g} s was used up"
                   if time.monotonic() >= wall_deadline else
                   f"was not run: your code crashed or hung the sandbox {stats.starts} times")
            for t in pending:
                runs[t.index].results.append(OpResult(error={"type": "NotRun", "message": why, "sandbox": True}))
            break
        (in_dir / "request.json").write_text(json.dumps(
            {"groups": [{"index": t.index, "ops": t.plan.ops} for t in pending]}))
        stats.starts += 1
        done = _one_process(pending, runs, job=job, limits=limits, backend=backend, bwrap=bwrap, python=python,
                            wall_deadline=wall_deadline, progress=progress, poisoned=poisoned, stats=stats)
        pending = [t for t in pending if t.index not in done]
    stats.seconds = time.monotonic() - t_start
    return runs, stats


def _one_process(pending: list[Task], runs: dict[int, GroupRun], *, job: Job, limits: RunLimits,
                 backend: CgroupBackend, bwrap: str, python: Path, wall_deadline: float,
                 progress: Callable[[str], None] | None, poisoned: dict[str, dict[str, Any]],
                 stats: SandboxStats) -> set[int]:
    """Start one sandbox on the pending tasks; return the indices of the tasks that are finished."""
    by_index = {t.index: t for t in pending}
    done: set[int] = set()
    current: tuple[int, int] | None = None
    hello = False
    with SandboxProcess(backend=backend, bwrap=bwrap, python=python, job=job, limits=limits,
                        argv_tail=["/job/harness/main.py"]) as sp:
        op_deadline = time.monotonic() + STARTUP_TIMEOUT
        failure: dict[str, Any] | None = None
        try:
            while True:
                msgs = sp.messages(until=min(op_deadline, wall_deadline))
                if msgs is None:  # the channel closed or the process ended
                    try:
                        sp.proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:  # alive, but it closed the grader's channel
                        failure = {"type": "Protocol", "sandbox": True,
                                   "message": "closed the grader's channel; do not close file descriptors you did not open"}
                    else:
                        failure = _death(sp, limits)
                    break
                if not msgs and time.monotonic() >= min(op_deadline, wall_deadline):
                    if current is None:
                        failure = {"type": "Timeout", "sandbox": True,
                                   "message": "did not get going within the time limit"}
                    else:
                        t = by_index[current[0]]
                        budget = op_timeout(t.plan.ops[current[1]], limits)
                        failure = {"type": "Timeout", "sandbox": True, "message":
                                   f"did not finish within {budget:g} s (an endless loop?)"
                                   if time.monotonic() < wall_deadline else
                                   f"was stopped: the grading time limit of {limits.wall_s:g} s was used up"}
                    if sp.usage().pids_limit_hit:
                        failure["message"] += f" while trying to start more than {limits.pids} processes"
                    break
                finished = False
                for m in msgs:
                    kind = m.get("t")
                    if kind == "hello":
                        hello = True
                        continue
                    if kind == "done":
                        finished = True
                        break
                    g, i = m.get("g"), m.get("i")
                    if g not in by_index or not isinstance(i, int) or not 0 <= i < len(by_index[g].plan.ops):
                        raise wire.WireError("message for an unknown op")
                    t = by_index[g]
                    if kind == "start":
                        current = (g, i)
                        op_deadline = time.monotonic() + op_timeout(t.plan.ops[i], limits)
                        if i == 0 and progress:
                            progress(t.check_id)
                    elif kind == "result":
                        err = m.get("error")
                        runs[g].results.append(OpResult(value=m.get("value"), error=_clean_error(err) if err else None,
                                                        seconds=float(m.get("s", 0.0)) if isinstance(m.get("s"), int | float) else 0.0))
                        current = None
                        if err or i == len(t.plan.ops) - 1:
                            done.add(g)
                        op_deadline = time.monotonic() + STARTUP_TIMEOUT
                if finished:
                    break
        except wire.WireError as exc:
            failure = {"type": "Protocol", "sandbox": True,
                       "message": f"sent output the grader cannot accept ({exc}); do not write to the grader's channel"
                       if sp.outcome is not Outcome.OVERFLOW else f"produced more than {limits.output_bytes} bytes of output"}
        usage = sp.usage()
        stats.peak_memory_bytes = max(stats.peak_memory_bytes, usage.peak_memory_bytes)
        if failure is not None:
            cause = kill_cause(str(failure.get("type", "")), usage, sp.outcome)
            stats.kills[cause] = stats.kills.get(cause, 0) + 1
        if not hello and failure is not None:
            raise GraderFault(f"the sandbox harness did not start: {failure['message']}\n{sp.stdout_text[-2000:]}")
    if failure is not None:
        if current is not None:
            g, i = current
            runs[g].results.append(OpResult(error=failure))
            done.add(g)
            op = by_index[g].plan.ops[i]
            if op["op"] == "import":
                poisoned[op["module"]] = failure
        # Tasks that were not reached stay pending; a task interrupted between two ops restarts from scratch.
        # (The interrupted op's own task is in `done` already.)
        for t in pending:
            if t.index not in done:
                runs[t.index].results.clear()
    else:
        done.update(by_index)
    return done


def op_timeout(op: dict[str, Any], limits: RunLimits) -> float:
    """Budget of one op by what it does."""
    kind = op["op"]
    if kind == "import":
        return limits.import_s
    if kind == "predict":
        return limits.wall_s
    if kind in ("new", "torch_load", "load_state_dict", "torch_probe", "state_keys"):
        return limits.build_s
    return limits.op_s


def kill_cause(failure_type: str, usage: Usage, outcome: Outcome | None) -> str:
    """Why a sandbox process had to end early, as one metric label."""
    if usage.oom_killed:
        return "memory"
    if usage.pids_limit_hit:
        return "pids"
    if failure_type == "Timeout":
        return "timeout"
    if outcome is Outcome.OVERFLOW:
        return "overflow"
    return {"Crash": "crash", "Protocol": "protocol"}.get(failure_type, "other")


def _death(sp: SandboxProcess, limits: RunLimits) -> dict[str, Any]:
    usage = sp.usage()
    code = sp.proc.returncode
    if usage.oom_killed:
        msg = f"was killed for using more than {limits.memory_bytes / 2**30:g} GiB of memory"
    elif usage.pids_limit_hit:
        msg = f"was stopped: it tried to start more than {limits.pids} processes or threads"
    else:
        msg = (f"ended the process (exit code {code}); do not call exit(), sys.exit() or os._exit() in your code"
               if code is not None and code >= 0 else f"crashed the process (signal {-code if code else '?'})")
    return {"type": "Crash", "sandbox": True, "message": msg}


def _clean_error(err: Any) -> dict[str, Any]:
    if not isinstance(err, dict):
        return {"type": "Error", "message": "an unreadable error", "where": ""}
    return {"type": str(err.get("type", "Error"))[:100], "message": str(err.get("message", ""))[:1500],
            "where": str(err.get("where", ""))[:200], "harness": bool(err.get("harness", False))}


def run_reference(tasks: list[Task], *, package: str, inputs: Inputs) -> dict[int, GroupRun]:
    """Run the same scripts against the trusted reference solution, in this process."""

    def load(name: str) -> Any:
        return importlib.import_module(f"{package}.{name}")

    runs: dict[int, GroupRun] = {}
    for t in tasks:
        if not t.plan.use_reference:
            continue
        interp = Interpreter(load_module=load, inputs=inputs.arrays)
        run = GroupRun()
        for op in t.plan.ops:
            try:
                run.results.append(OpResult(value=interp.run(op)))
            except Exception as exc:
                run.results.append(OpResult(error=error_info(exc, submission_dir=None)))
                break
        runs[t.index] = run
    return runs
