"""Orchestration of one grading: unpack -> plan checks -> sandbox + reference -> judge -> result."""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from grader.archive import ArchiveLimits, ArchiveRejected, unpack_submission
from grader.assignments import AssignmentSpec, CheckSpec, InvalidSpec, UnknownAssignment, load_assignment
from grader.assignments.spec import make_limits
from grader.data import DataUnavailable
from grader.harness.protocol import Outcome
from grader.judge.budgets import op_budgets, reference_predict_seconds
from grader.judge.context import GroupRun, Inputs, Verdict
from grader.judge.execute import GraderFault, Task, run_in_sandbox, run_reference
from grader.judge.hidden_files import HiddenFiles, op_datasets
from grader.judge.kinds import KINDS, FollowUpKind
from grader.memory_bound import judge_memory
from grader.notebook import SourceMap, with_notebook_modules
from grader.result import CheckResult, CheckStatus, GradeResult
from grader.reuse import Kept, Reused, ReuseStore
from grader.reuse.isolation import isolate
from grader.reuse.keys import check_key, data_fingerprint, submission_digests
from grader.sandbox import RunLimits, SandboxUnavailable, host_backend
from grader.sandbox.cgroups import CgroupBackend
from grader.settings import GraderSettings
from grader.settings import settings as default_settings

log = logging.getLogger(__name__)
VerdictCallback = Callable[[CheckResult], None]
"""Told each check's result as soon as it is judged (see run_grading)."""
MESSAGE_CHARS = 3000
"""A check's message is cut here (it may quote values the student's code returned)."""


def run_grading(*, zip_path: Path, assignment: str, settings: GraderSettings | None = None,
                progress: Callable[[str], None] | None = None, only: Collection[str] | None = None,
                on_verdict: VerdictCallback | None = None, reuse: ReuseStore | None = None) -> GradeResult:
    """Grade one zip (see grader.api.grade_submission).

    `on_verdict` is called once per check of the final result, as soon as that check is judged: a check whose
    files are missing right after planning, a sandboxed check as soon as its own ops have answered (while the
    sandbox goes on with the others; the reference ran before the sandbox, as the op budgets need its times).
    What it is told equals the final result's check, except that the follow-up round may still add a hint to a
    failed check's message later: the final result wins. A grading that ends as "rejected" or "error" may have
    streamed nothing, or (an error after the sandbox, e.g. the judge's memory bound) verdicts the final result
    no longer shows. What the callback raises (Exception) is logged and ignored.

    With `reuse`, each sandboxed check's input key is looked up first: a check offered an earlier verdict is not
    run (nor its reference), its verdict is streamed at once, marked `reused_from`; at the end the store is told
    which verdicts of this grading may be kept (grader.reuse). A store that fails is logged and ignored."""
    t0 = time.perf_counter()
    cfg = settings or default_settings()
    try:
        spec = load_assignment(assignment, cfg.assignment_dirs)
    except UnknownAssignment as exc:
        return GradeResult.error(assignment=assignment, message=str(exc))
    except (InvalidSpec, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        log.exception("the spec of %s does not load", assignment)
        return GradeResult.error(assignment=assignment, deterministic=True, message=(
            f"The spec of assignment {assignment!r} is invalid, so no submission can be graded until an instructor "
            f"fixes it (not the student's fault): {exc}"))
    if only is not None:
        unknown = set(only) - {c.id for c in spec.checks}
        if unknown:
            return GradeResult.error(assignment=spec.name, message=f"unknown checks: {', '.join(sorted(unknown))}")
        spec = replace(spec, checks=tuple(c for c in spec.checks if c.id in only))
    if bad := [c for c in spec.checks if c.kind not in KINDS]:  # load_assignment refuses them; a spec made otherwise
        return GradeResult.error(assignment=spec.name, max_score=spec.max_score, deterministic=True, message=(
            f"The spec of assignment {spec.name!r} names check kinds the grader does not have (not the student's "
            f"fault): {', '.join(f'{c.id!r} has kind {c.kind!r}' for c in bad)}"))
    try:
        backend = host_backend(cfg.bwrap, cfg.cgroup_root, cfg.cgroup_name)
    except SandboxUnavailable as exc:
        return GradeResult.error(assignment=spec.name, max_score=spec.max_score,
                                 message=f"The grader refuses to run student code: {exc}")
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=cfg.work_dir))
    lim = make_limits(cfg.limit_overrides, base=spec.limits) if cfg.limit_overrides else spec.limits
    try:
        with judge_memory(lim.judge_bytes):
            return _grade(zip_path, spec, cfg, backend, job_dir, t0, progress, on_verdict, reuse)
    except GraderFault as exc:
        log.exception("grader fault")
        return GradeResult.error(assignment=spec.name, max_score=spec.max_score, message=str(exc))
    except MemoryError:
        log.exception("the judge ran out of memory")
        return GradeResult.error(assignment=spec.name, max_score=spec.max_score, message=(
            f"the grader ran out of its own memory bound ({lim.judge_bytes / 2**30:g} GiB) on this submission "
            "(not your fault; the instructors are told)"))
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def _grade(zip_path: Path, spec: AssignmentSpec, cfg: GraderSettings, backend: CgroupBackend, job_dir: Path,
           t0: float, progress: Callable[[str], None] | None, on_verdict: VerdictCallback | None,
           reuse: ReuseStore | None) -> GradeResult:
    lim = make_limits(cfg.limit_overrides, base=spec.limits) if cfg.limit_overrides else spec.limits
    try:
        unpacked = unpack_submission(zip_path, job_dir / "submission", expected=spec.files, aliases=spec.aliases,
                                     limits=ArchiveLimits(upload_bytes=lim.upload_bytes, max_members=lim.max_members,
                                                          unpacked_bytes=lim.unpacked_bytes))
    except ArchiveRejected as exc:
        return GradeResult.rejected(assignment=spec.name, message=exc.message, max_score=spec.max_score,
                                    timings={"total_s": round(time.perf_counter() - t0, 3)})
    unpacked, notebooks = with_notebook_modules(unpacked, factories=spec.factories)  # NAME.ipynb -> NAME.py
    t_unpacked = time.perf_counter()
    if not unpacked.found:
        return GradeResult.rejected(
            assignment=spec.name, max_score=spec.max_score,
            message=" ".join([f"The zip contains none of the files this assignment asks for ({', '.join(spec.files)}). "
                              "Put them at the root of the zip.", *unpacked.notices]),
            timings={"total_s": round(time.perf_counter() - t0, 3)})

    rng = np.random.default_rng(secrets.randbits(64))
    inputs = Inputs(cfg)
    verdicts: dict[str, Verdict] = {}
    tasks: list[Task] = []
    for index, check in enumerate(spec.checks):
        missing = [f for f in _files_needed(check, spec.files) if f not in unpacked.found]
        if missing:
            where = (f"looked for in the folder '{unpacked.folder}/' with your other files" if unpacked.folder
                     else "files belong at the zip root")
            verdicts[check.id] = Verdict.fail(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from your zip ({where})")
            continue
        try:
            plan = KINDS[check.kind].plan(check, spec, inputs, rng)
        except DataUnavailable as exc:  # hidden data not prepared: the grader's problem, not the student's
            return GradeResult.error(assignment=spec.name, max_score=spec.max_score, message=str(exc))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # a spec the kind cannot plan
            log.exception("planning %s failed", check.id)
            return GradeResult.error(assignment=spec.name, max_score=spec.max_score, deterministic=True, message=(
                f"The grader cannot plan check {check.id!r} (kind {check.kind!r}) of assignment {spec.name!r}: the "
                f"spec or the grader needs fixing (not the student's fault): {exc!r}"))
        tasks.append(Task(index=index, check_id=check.id, plan=plan))

    reused: dict[str, Reused] = {}
    tasks, reads = isolate(tasks, spec, unpacked.root)
    keys: dict[int, str] = {}
    if reuse is not None and tasks:
        digests, data = submission_digests(unpacked.root), data_fingerprint(cfg.hidden_data)
        keys = {t.index: check_key(spec=spec, check=spec.checks[t.index], reads=reads[t.index], limits=lim,
                                   data=data, assignment=spec.name, digests=digests) for t in tasks}
        offered = _lookup(reuse, {spec.checks[i].id: k for i, k in keys.items()})
        for t in tasks:
            if (earlier := offered.get(t.check_id)) is not None and earlier.result.id == t.check_id:
                reused[t.check_id] = replace(earlier, result=earlier.result.model_copy(
                    update={"reused_from": earlier.origin or "an earlier upload", "seconds": None}))
        tasks = [t for t in tasks if t.check_id not in reused]

    def tell(check: CheckSpec, seconds: float | None) -> None:
        if on_verdict is None:
            return
        try:
            on_verdict(reused[check.id].result if check.id in reused else
                       _check_result(check, verdicts[check.id], notebooks, seconds))
        except Exception:  # the callback's problem (a worker's post): the grading goes on
            log.exception("on_verdict for %s failed", check.id)

    for check in spec.checks:  # planned every check: these verdicts stand
        if check.id in verdicts or check.id in reused:
            tell(check, None)

    limits = RunLimits(memory_bytes=lim.memory_bytes, pids=lim.pids, cpus=lim.cpus, wall_s=lim.wall_s,
                       output_bytes=lim.output_bytes, tmpfs_bytes=lim.tmpfs_bytes, import_s=lim.import_s,
                       build_s=lim.build_s, op_s=lim.op_s, predict_s=lim.predict_s,
                       retained_bytes=lim.retained_bytes)
    hidden = HiddenFiles(job_dir, _used_datasets(tasks, inputs.datasets))
    reference_dir = spec.reference_dir
    refs = run_reference(tasks, reference_dir=reference_dir, inputs=inputs, data_dir=hidden.staged)
    counts = {name: len(images) for name, images in inputs.datasets.items()}
    tasks = [replace(t, budgets=op_budgets(t.plan.ops, limits, refs.get(t.index), reference_predict_seconds(
        key=(spec.name, t.check_id), ops=t.plan.ops, reference_dir=reference_dir,
        data_dir=hidden.staged, inputs=inputs.arrays, counts=counts))) for t in tasks]
    plans = {t.index: t.plan for t in tasks}

    def judge(index: int, run: GroupRun) -> None:  # as soon as the check's ops have answered
        check = spec.checks[index]
        try:
            verdicts[check.id] = KINDS[check.kind].judge(check, spec, plans[index], run, refs.get(index))
        except Exception as exc:  # a bug of ours must not cost the student the whole report
            log.exception("judging %s failed", check.id)
            verdicts[check.id] = Verdict.err(f"the grader failed on this check (not your fault): {exc!r}")
        tell(check, _seconds(run))

    runs, stats = run_in_sandbox(tasks, inputs=inputs, job_dir=job_dir, submission=unpacked.root, limits=limits,
                                 backend=backend, bwrap=cfg.bwrap, python=cfg.python, hidden=hidden,
                                 progress=progress, on_done=judge) if tasks else ({}, None)

    metrics: dict[str, float] = {k: v for r in reused.values() for k, v in r.metrics.items()}
    for t in tasks:
        check = spec.checks[t.index]
        if check.id not in verdicts:  # run_in_sandbox tells every task; should one be missed, judge it now
            judge(t.index, runs.get(t.index, GroupRun()))
        metrics.update(verdicts[check.id].metrics)
    follow_up_s = _follow_up(spec, tasks, runs, verdicts, inputs=Inputs(cfg), rng=rng, job_dir=job_dir,
                             submission=unpacked.root, limits=limits, backend=backend, cfg=cfg)

    seconds = {spec.checks[t.index].id: _seconds(runs[t.index]) for t in tasks if t.index in runs}
    results = [reused[c.id].result if c.id in reused else _check_result(c, verdicts[c.id], notebooks, seconds.get(c.id))
               for c in spec.checks]
    if reuse is not None:
        _keep(reuse, spec, tasks, runs, verdicts, keys, results, reused)
    t_end = time.perf_counter()
    timings = {"unpack_s": round(t_unpacked - t0, 3), "sandbox_s": round(stats.seconds, 3) if stats else 0.0,
               "total_s": round(t_end - t0, 3)}
    if follow_up_s is not None:
        timings["follow_up_s"] = round(follow_up_s, 3)
    if stats:
        metrics["sandbox.peak_memory_mb"] = round(stats.peak_memory_bytes / 2**20, 1)
        metrics["sandbox.starts"] = float(stats.starts)
        metrics["judge.retained_mb"] = round(stats.retained_bytes / 2**20, 2)
        for cause, n in sorted(stats.kills.items()):
            metrics[f"sandbox.kills.{cause}"] = float(n)
    return GradeResult.from_checks(assignment=spec.name, checks=results, metrics=metrics, timings=timings,
                                   notices=list(unpacked.notices), required=spec.required_checks)


def _lookup(reuse: ReuseStore, keys: dict[str, str]) -> Mapping[str, Reused]:
    try:
        return reuse.lookup(keys)
    except Exception:  # the store's problem (the web app is down): grade everything
        log.exception("looking up earlier verdicts failed")
        return {}


KEPT_OUTCOMES = frozenset({Outcome.RAISED, Outcome.FAILED})
"""Failures of student code that do not depend on the machine: a verdict that ended in one may be kept. A
timeout, a kill over a limit, a crash or a check not run for lack of time is judged again next time."""


def _keep(reuse: ReuseStore, spec: AssignmentSpec, tasks: list[Task], runs: dict[int, GroupRun],
          verdicts: dict[str, Verdict], keys: dict[int, str], results: list[CheckResult],
          reused: dict[str, Reused]) -> None:
    by_id = {r.id: r for r in results}
    kept = [Kept(key=keys[t.index], result=by_id[t.check_id], metrics=dict(verdicts[t.check_id].metrics))
            for t in tasks
            if t.index in keys and verdicts[t.check_id].status in (CheckStatus.PASSED, CheckStatus.FAILED)
            and all(r.error is None or r.error.outcome in KEPT_OUTCOMES for r in runs.get(t.index, GroupRun()).results)]
    kept += [Kept(key=keys[i], result=reused[c.id].result, metrics=dict(reused[c.id].metrics))
             for i, c in enumerate(spec.checks) if c.id in reused and i in keys]
    try:
        reuse.keep(kept)
    except Exception:
        log.exception("keeping verdicts for reuse failed")


def _used_datasets(tasks: list[Task], datasets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The hidden sets the tasks that run read (a reused check's set is not staged)."""
    used = {name for t in tasks for op in t.plan.ops for name in op_datasets(op)}
    return {name: images for name, images in datasets.items() if name in used}


FOLLOW_UP_WALL_S = 120.0
"""Wall-clock budget of the follow-up round (a few hundred predictions per image variant)."""


def _follow_up(spec: AssignmentSpec, tasks: list[Task], runs: dict[int, GroupRun], verdicts: dict[str, Verdict], *,
               inputs: Inputs, rng: np.random.Generator, job_dir: Path, submission: Path, limits: RunLimits,
               backend: CgroupBackend, cfg: GraderSettings) -> float | None:
    """A second, small sandbox round for the checks whose kind asks for one after judging (`follow_up`): today a
    near-chance accuracy, whose cause the judge narrows down with predictions on image variants
    (grader.judge.diagnose). A good submission never gets one. The kind's `judge_follow_up` may only add to the
    verdict's message; a failure of this round leaves the verdict as it was. Returns its seconds, None if not run."""
    asked: list[Task] = []
    for t in tasks:
        check = spec.checks[t.index]
        kind = KINDS[check.kind]
        try:
            plan = kind.follow_up(check, spec, t.plan, runs.get(t.index, GroupRun()), verdicts[check.id], inputs,
                                  rng) if isinstance(kind, FollowUpKind) else None
        except Exception:  # a bug of ours: the verdict stands without the hint
            log.exception("planning the follow-up of %s failed", check.id)
            plan = None
        if plan is not None:
            asked.append(Task(index=t.index, check_id=check.id, plan=plan, component=t.component))
    if not asked:
        return None
    t0 = time.perf_counter()
    follow_dir = job_dir / "follow-up"
    follow_dir.mkdir()
    try:
        more, _ = run_in_sandbox(asked, inputs=inputs, job_dir=follow_dir, submission=submission,
                                 limits=replace(limits, wall_s=min(limits.wall_s, FOLLOW_UP_WALL_S)),
                                 backend=backend, bwrap=cfg.bwrap, python=cfg.python,
                                 hidden=HiddenFiles(follow_dir, inputs.datasets))
    except GraderFault:
        log.exception("the follow-up round could not start")
        return time.perf_counter() - t0
    for t in asked:
        check = spec.checks[t.index]
        before = verdicts[check.id]
        try:
            kind = KINDS[check.kind]
            assert isinstance(kind, FollowUpKind)  # only such kinds asked
            after = kind.judge_follow_up(check, spec, t.plan, more.get(t.index, GroupRun()), before)
        except Exception:
            log.exception("judging the follow-up of %s failed", check.id)
            continue
        verdicts[check.id] = replace(before, message=after.message)  # only the words change
    return time.perf_counter() - t0


def _seconds(run: GroupRun) -> float | None:
    """What a check's student code ran for in the sandbox (None when nothing ran)."""
    return round(sum(r.seconds for r in run.results), 3) if run.results else None


def _files_needed(check: CheckSpec, files: Collection[str] = ()) -> list[str]:
    module = f"{check.module}.py"
    if f"{check.module}.ipynb" in files and module not in files:  # a notebook submission
        module = f"{check.module}.ipynb"
    return ([module] if check.module else []) + list(check.needs)


def _check_result(check: CheckSpec, v: Verdict, notebooks: SourceMap, seconds: float | None) -> CheckResult:
    """The check's result; messages about a module made from a notebook name the notebook (and cell) instead."""
    fraction = v.fraction if v.fraction is not None else (1.0 if v.status is CheckStatus.PASSED else 0.0)
    return CheckResult(id=check.id, target=check.target, status=v.status,
                       points=round(check.points * fraction, 4), max_points=check.points,
                       message=_bounded(notebooks.student_text(v.message)), seconds=seconds)


def _bounded(message: str) -> str:
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + " ... (message shortened)"
