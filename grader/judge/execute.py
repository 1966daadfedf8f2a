"""Run checks' op scripts: the student's in the sandbox (restarting it after hangs and crashes), the
reference's in-process (trusted code).

The judge follows the harness op by op and accepts only the frame it expects next: "hello", then for each
pending task in order "start" and "result" of op 0, 1, ... (a task ends at its first error), then "done".
Anything else is a protocol failure of the op at hand. So forged frames cannot reorder ops, start checks that
were not planned or make hidden sets appear early. The judge's own clock times every op; what it keeps of
the output is bounded (`RunLimits.retained_bytes`), and so is the student text in it (`student_text`).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.harness import wire
from grader.harness.op_messages import ImportOp
from grader.harness.ops import Interpreter, error_info
from grader.harness.protocol import (
    Done,
    Failure,
    Group,
    Hello,
    Outcome,
    Request,
    ResultFailure,
    ResultValue,
    Start,
    frame_from_wire,
)
from grader.judge.budgets import Call, call_name, floor_budget, hung_call, op_calls
from grader.judge.context import GroupRun, Inputs, OpResult, Plan
from grader.judge.hidden_files import HiddenFiles, op_datasets
from grader.judge.reference import reference_module
from grader.judge.student_text import TextBudget
from grader.sandbox import RunLimits, SandboxProcess
from grader.sandbox.bwrap import Job
from grader.sandbox.cgroups import CgroupBackend, Usage

HARNESS_DIR = Path(__file__).resolve().parent.parent / "harness"
STARTUP_TIMEOUT = 60.0
MAX_STARTS = 8
PROGRESS_EVERY_S = 0.25
"""Least time between two progress reports of one grading (the latest check wins)."""


class GraderFault(RuntimeError):
    """The harness itself could not start: the grader's problem, never the student's."""


@dataclass(frozen=True, slots=True)
class Task:
    """One check's plan as it is sent to the sandbox, with each op's time budget (empty: by kind)."""

    index: int
    check_id: str
    plan: Plan
    budgets: tuple[float, ...] = ()
    component: int = 0
    """Its isolation group: tasks of different groups never share a sandbox process (grader.reuse.reads: a
    check's verdict then depends on no student code outside its group's modules). Groups run in ascending order."""

    def budget(self, i: int, limits: RunLimits) -> float:
        return self.budgets[i] if i < len(self.budgets) else floor_budget(self.plan.ops[i], limits)

    @property
    def hidden(self) -> bool:
        """Whether any op reads a hidden set (such tasks run last: see student_text)."""
        return any(op_datasets(op) for op in self.plan.ops)


@dataclass(slots=True)
class SandboxStats:
    starts: int = 0
    peak_memory_bytes: int = 0
    seconds: float = 0.0
    kills: dict[str, int] = field(default_factory=dict)
    """Sandbox processes ended by the grader or the kernel, by cause (timeout, memory, pids, crash, ...)."""
    retained_bytes: int = 0
    """Decoded size of everything the judge kept from the sandbox (all starts)."""


@dataclass(slots=True)
class _Grading:
    """What one grading's sandbox starts share."""

    job: Job
    limits: RunLimits
    backend: CgroupBackend
    bwrap: str
    python: Path
    wall_deadline: float
    hidden: HiddenFiles
    stats: SandboxStats
    progress: Callable[[str], None] | None
    on_done: Callable[[int, GroupRun], None] | None = None
    text: TextBudget = field(default_factory=TextBudget)
    poisoned: dict[str, Failure] = field(default_factory=dict)
    """module -> the failure of its import (hang, crash)."""
    hung: dict[Call, str] = field(default_factory=dict)
    """student call -> why later ops making it are not run."""
    reported: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    """Tasks whose run is final (told to `on_done`)."""
    last_progress: float = 0.0
    pending_progress: str | None = None

    def report(self, t: Task) -> None:
        """Progress for a planned check's first op, at most every PROGRESS_EVERY_S (the latest wins)."""
        if self.progress is None or t.index in self.reported:
            return
        self.reported.add(t.index)
        self.pending_progress = t.check_id
        self.flush_progress()

    def finish(self, index: int, run: GroupRun) -> None:
        """A task's run is final (no restart clears it): tell `on_done`, once per task."""
        if index in self.finished:
            return
        self.finished.add(index)
        if self.on_done is not None:
            self.on_done(index, run)

    def flush_progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.pending_progress and self.progress and (force or now - self.last_progress >= PROGRESS_EVERY_S):
            self.last_progress = now
            check_id, self.pending_progress = self.pending_progress, None
            self.progress(check_id)


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
    hidden: HiddenFiles,
    progress: Callable[[str], None] | None = None,
    on_done: Callable[[int, GroupRun], None] | None = None,
) -> tuple[dict[int, GroupRun], SandboxStats]:
    """Run every task's ops against the student's code; each task gets a `GroupRun`, never an exception.

    Each isolation group (`Task.component`) gets sandbox processes of its own, the groups in ascending order;
    within a group, tasks that read hidden sets run after all others (a stable order otherwise). `on_done(index, run)` is called
    once per task as soon as its run is final (its last op answered, it failed, or it was not run), while the
    sandbox goes on with the others; what it raises ends the grading."""
    import numpy as np

    in_dir = job_dir / "in"
    in_dir.mkdir(parents=True)
    np.savez(in_dir / "inputs.npz", **inputs.arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    runs: dict[int, GroupRun] = {t.index: GroupRun() for t in tasks}
    t_start = time.monotonic()
    g = _Grading(job=Job(harness=HARNESS_DIR, submission=submission, inputs=in_dir, data=hidden.shown),
                 limits=limits, backend=backend, bwrap=bwrap, python=python,
                 wall_deadline=t_start + limits.wall_s, hidden=hidden, stats=SandboxStats(), progress=progress,
                 on_done=on_done)
    pending = sorted(tasks, key=lambda t: (t.component, t.hidden))
    max_starts = MAX_STARTS + len({t.component for t in tasks}) - 1  # a restart budget; each group starts once
    while pending:
        pending = [t for t in pending if not _fail_fast(t, runs[t.index], g)]
        if not pending:
            break
        if g.stats.starts >= max_starts or time.monotonic() >= g.wall_deadline:
            why = (f"was not run: the grading time limit of {limits.wall_s:g} s was used up"
                   if time.monotonic() >= g.wall_deadline else
                   f"was not run: your code crashed or hung the sandbox {g.stats.starts} times")
            for t in pending:
                runs[t.index].results.append(OpResult(error=Failure(Outcome.NOT_RUN, why)))
                g.finish(t.index, runs[t.index])
            break
        batch = [t for t in pending if t.component == pending[0].component]
        (in_dir / "request.json").write_text(json.dumps(
            Request(groups=tuple(Group(index=t.index, ops=tuple(t.plan.ops)) for t in batch)).to_wire()))
        g.stats.starts += 1
        done = _one_process(batch, runs, g)
        pending = [t for t in pending if t.index not in done]
    g.flush_progress(force=True)
    g.stats.seconds = time.monotonic() - t_start
    return runs, g.stats


def _fail_fast(t: Task, run: GroupRun, g: _Grading) -> bool:
    """Fail a task at its first op that imports a module whose import failed, or makes a call that hung."""
    for i, (op, calls) in enumerate(zip(t.plan.ops, op_calls(t.plan.ops), strict=True)):
        error = None
        if isinstance(op, ImportOp) and op.module in g.poisoned:
            error = g.poisoned[op.module]
        elif hung := next((g.hung[c] for c in sorted(calls) if c in g.hung), None):
            error = Failure(Outcome.NOT_RUN, hung)
        if error is not None:
            run.results = [OpResult(value=None) for _ in range(i)] + [OpResult(error=error)]
            g.finish(t.index, run)
            return True
    return False


class _Protocol(Exception):
    """The sandbox sent a frame the judge did not expect."""


@dataclass(slots=True)
class _Follow:
    """Where one sandbox process is in the pending tasks' ops, so that only the frame expected next is accepted."""

    pending: list[Task]
    runs: dict[int, GroupRun]
    g: _Grading
    op_deadline: float
    done: set[int] = field(default_factory=set)
    position: int = 0  # index into `pending` of the task whose op is expected next
    op_index: int = 0
    current: tuple[int, int] | None = None  # (task position, op) started and not yet finished
    started_at: float = 0.0
    hello: bool = False
    tainted: bool = False  # this process has been shown hidden images

    def accept(self, m: wire.Message) -> bool:
        """Take one message; whether it was the harness's "done". Raises _Protocol for a frame out of turn."""
        frame = frame_from_wire(m.body)
        if not self.hello:
            if not isinstance(frame, Hello):
                raise _Protocol("sent a message before the grader's harness started")
            self.hello = True
            self.op_deadline = time.monotonic() + STARTUP_TIMEOUT
            return False
        if isinstance(frame, Done):
            if self.position != len(self.pending) or self.current is not None:
                raise _Protocol("said it was done before every check had run")
            return True
        want = (self.pending[self.position].index, self.op_index) if self.position < len(self.pending) else None
        got = (frame.group, frame.op) if isinstance(frame, Start | ResultValue | ResultFailure) else None
        if isinstance(frame, Start):
            if self.current is not None or got != want:
                raise _Protocol("started an op out of order")
            self._start()
        elif isinstance(frame, ResultValue | ResultFailure):
            if self.current is None or got != want:
                raise _Protocol("sent a result for an op that was not running")
            self._finish(frame, m.size)
        else:
            raise _Protocol(f"sent a message of unknown kind {frame.to_wire()['t']!r}")
        return False

    def _start(self) -> None:
        g, t = self.g, self.pending[self.position]
        self.current, self.started_at = (self.position, self.op_index), time.monotonic()
        self.op_deadline = self.started_at + t.budget(self.op_index, g.limits)
        if self.op_index == 0:
            g.report(t)
        if g.hidden.show(op_datasets(t.plan.ops[self.op_index])):
            self.tainted = True

    def _finish(self, frame: ResultValue | ResultFailure, size: int) -> None:
        g, t = self.g, self.pending[self.position]
        g.hidden.hide()
        result = _result(frame, size, g, tainted=self.tainted, seconds=time.monotonic() - self.started_at)
        self.runs[t.index].results.append(result)
        self.current = None
        if result.error or self.op_index == len(t.plan.ops) - 1:
            self.done.add(t.index)
            self.position, self.op_index = self.position + 1, 0
            g.finish(t.index, self.runs[t.index])
        else:
            self.op_index += 1
        self.op_deadline = time.monotonic() + STARTUP_TIMEOUT

    def blame(self, failure: Failure) -> None:
        """Give a process's failure to the op that was running, or else to the op expected next (so that a
        restart makes progress); learn what it says about the student's code (a poisoned import, a hung call)."""
        at = self.current or ((self.position, self.op_index) if self.position < len(self.pending) else None)
        if at is None:
            return
        g, t, i = self.g, self.pending[at[0]], at[1]
        self.runs[t.index].results.append(OpResult(error=failure))
        self.done.add(t.index)
        self._learn(failure, t, i)
        g.finish(t.index, self.runs[t.index])

    def _learn(self, failure: Failure, t: Task, i: int) -> None:
        g, op = self.g, t.plan.ops[i]
        if self.current is None:  # the op never started: nothing to learn about the student's code
            pass
        elif isinstance(op, ImportOp):
            g.poisoned[op.module] = failure
        elif failure.outcome is Outcome.TIMEOUT and (call := hung_call(op_calls(t.plan.ops)[i], failure.where)):
            g.hung.setdefault(call, f"was not run: {call_name(call)} did not finish within "
                                    f"{t.budget(i, g.limits):g} s in the check {t.check_id}")


def _one_process(pending: list[Task], runs: dict[int, GroupRun], g: _Grading) -> set[int]:
    """Start one sandbox on the pending tasks; return the indices of the tasks that are finished."""
    limits = g.limits
    failure: Failure | None = None
    with SandboxProcess(backend=g.backend, bwrap=g.bwrap, python=g.python, job=g.job, limits=limits,
                        argv_tail=["/job/harness/main.py"]) as sp:
        f = _Follow(pending=pending, runs=runs, g=g, op_deadline=time.monotonic() + STARTUP_TIMEOUT)
        try:
            failure = _follow(sp, f)
        except (wire.WireError, _Protocol) as exc:
            failure = (Failure(Outcome.OVERFLOW, f"produced more than {limits.output_bytes} bytes of output")
                       if sp.outcome is Outcome.OVERFLOW else
                       Failure(Outcome.MALFORMED, f"sent output the grader cannot accept ({exc}); do not write to the "
                                                  "grader's channel"))
        finally:
            g.hidden.hide()
        _account(sp, g, failure, hello=f.hello)
    if failure is None:
        return f.done | {t.index for t in pending}
    f.blame(failure)
    for t in pending:  # tasks not reached restart from scratch in the next process
        if t.index not in f.done:
            runs[t.index].results.clear()
    return f.done


def _follow(sp: SandboxProcess, f: _Follow) -> Failure | None:
    """Follow the process until it is done (None), or how it failed: it ended, closed the channel, timed out."""
    g = f.g
    while True:
        g.flush_progress()
        msgs = sp.messages(until=min(f.op_deadline, g.wall_deadline, time.monotonic() + PROGRESS_EVERY_S))
        if msgs is None:  # the channel closed or the process ended
            return _closed(sp, g.limits)
        now = time.monotonic()
        if not msgs and now >= min(f.op_deadline, g.wall_deadline):
            return _timeout(sp, g, f.pending, f.current, hello=f.hello, tainted=f.tainted)
        if any(f.accept(m) for m in msgs):
            return None


def _closed(sp: SandboxProcess, limits: RunLimits) -> Failure:
    try:
        sp.proc.wait(timeout=2)
    except subprocess.TimeoutExpired:  # alive, but it closed the grader's channel
        return Failure(Outcome.MALFORMED, "closed the grader's channel; do not close file descriptors you did not "
                                          "open")
    return _death(sp, limits)


def _account(sp: SandboxProcess, g: _Grading, failure: Failure | None, *, hello: bool) -> None:
    """Record how the process ended (its outcome, peak memory, why it was stopped); a harness that never started
    is the grader's fault."""
    sp.outcome = Outcome.PASSED if failure is None else failure.outcome
    usage = sp.usage()
    g.stats.peak_memory_bytes = max(g.stats.peak_memory_bytes, usage.peak_memory_bytes)
    if failure is not None:
        cause = kill_cause(failure.outcome, usage)
        g.stats.kills[cause] = g.stats.kills.get(cause, 0) + 1
    if not hello and failure is not None:
        raise GraderFault(f"the sandbox harness did not start: {failure.message}\n{sp.stdout_text[-2000:]}")


def _result(frame: ResultValue | ResultFailure, size: int, g: _Grading, *, tainted: bool,
            seconds: float) -> OpResult:
    """The op's outcome as the judge keeps it: bounded in size and in student text, timed by the judge."""
    g.stats.retained_bytes += size
    if g.stats.retained_bytes > g.limits.retained_bytes:
        return OpResult(error=Failure(Outcome.OVERFLOW, f"sent back more data than the grader keeps from one grading "
                                                        f"({g.limits.retained_bytes / 2**20:g} MiB); return what the "
                                                        "check asks for"), seconds=seconds)
    if isinstance(frame, ResultFailure):
        return OpResult(error=g.text.clean(frame.failure, tainted=tainted), seconds=seconds)
    return OpResult(value=frame.value, seconds=seconds)


def _timeout(sp: SandboxProcess, g: _Grading, pending: list[Task], current: tuple[int, int] | None, *,
             hello: bool, tainted: bool) -> Failure:
    limits = g.limits
    where = ""
    if not hello:
        message = "did not get going within the time limit"
    elif time.monotonic() >= g.wall_deadline:
        message = f"was stopped: the grading time limit of {limits.wall_s:g} s was used up"
    elif current is None:
        message = ("was not run: the sandbox stopped answering between two checks (a thread or signal handler "
                   "of your code?)")
    else:
        t = pending[current[0]]
        where = g.text.clean_place(sp.where_stuck(), tainted=tainted)
        message = (f"did not finish within {t.budget(current[1], limits):g} s (an endless loop?"
                   + (f" It was running {where})" if where else ")"))
    if sp.usage().pids_limit_hit:
        message += f" while trying to start more than {limits.pids} processes"
    return Failure(Outcome.TIMEOUT, message, where=where)


def kill_cause(outcome: Outcome, usage: Usage) -> str:
    """Why a sandbox process had to end early, as one metric label."""
    if usage.oom_killed:
        return "memory"
    if usage.pids_limit_hit:
        return "pids"
    return {Outcome.TIMEOUT: "timeout", Outcome.OVERFLOW: "overflow", Outcome.CRASH: "crash",
            Outcome.KILLED: "crash", Outcome.MALFORMED: "protocol"}.get(outcome, "other")


def _death(sp: SandboxProcess, limits: RunLimits) -> Failure:
    """How a process that ended by itself (or by the kernel) ended: KILLED over a cgroup limit, else CRASH."""
    usage = sp.usage()
    code = sp.proc.returncode
    if usage.oom_killed:
        return Failure(Outcome.KILLED, f"was killed for using more than {limits.memory_bytes / 2**30:g} GiB of memory")
    if usage.pids_limit_hit:
        return Failure(Outcome.KILLED, f"was stopped: it tried to start more than {limits.pids} processes or threads")
    return Failure(Outcome.CRASH, f"ended the process (exit code {code}); do not call exit(), sys.exit() or "
                                  "os._exit() in your code" if code is not None and code >= 0 else
                                  f"crashed the process (signal {-code if code else '?'})")


def run_reference(tasks: list[Task], *, reference_dir: Path, inputs: Inputs,
                  data_dir: Path | None = None) -> dict[int, GroupRun]:
    """Run the same scripts against the trusted reference solution, in this process (each op timed)."""

    def load(name: str) -> Any:
        return reference_module(reference_dir, name)

    runs: dict[int, GroupRun] = {}
    for t in tasks:
        if not t.plan.use_reference:
            continue
        interp = Interpreter(load_module=load, inputs=inputs.arrays, data_dir=data_dir, submission_dir=reference_dir)
        run = GroupRun()
        for op in t.plan.ops:
            t0 = time.perf_counter()
            try:
                run.results.append(OpResult(value=_snapshot(interp.run(op)), seconds=time.perf_counter() - t0))
            except Exception as exc:
                run.results.append(OpResult(error=error_info(exc, submission_dir=None),
                                            seconds=time.perf_counter() - t0))
                break
        runs[t.index] = run
    return runs


def _snapshot(value: Any) -> Any:
    """A reference value as it is now: arrays copied, so that a later op updating the reference's objects in
    place (a training step, ``params[name] -= ...``) cannot change what was recorded (the sandbox's values are
    copies by construction: they were sent as bytes)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    return value
