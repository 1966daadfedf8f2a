"""Prometheus metrics of the grading pipeline, computed from the database at scrape time.

Every web process reports the same values (they are functions of the database), so Prometheus may scrape
any of them: queue length, gradings per minute, the grading duration histogram, outcomes by status and
sandbox kills by cause (the `sandbox.kills.<cause>` metrics the engine stores in each result). Results are
parsed once per process: a cache keyed on (submission id, finished_at) keeps scrapes cheap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import Submission, SubmissionStatus, utcnow

DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
RATE_WINDOW = timedelta(minutes=5)
FINAL = (SubmissionStatus.GRADED.value, SubmissionStatus.REJECTED.value, SubmissionStatus.ERROR.value)
KILL_PREFIX = "sandbox.kills."


@dataclass
class KillCache:
    """Kills by cause per (submission id, finished_at), filled lazily; shared by a process's threads."""

    seen: dict[int, tuple[datetime, dict[str, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def totals(self, session: Session, finished: dict[int, datetime]) -> dict[str, float]:
        with self.lock:
            for sid in [s for s in self.seen if s not in finished]:
                del self.seen[sid]
            stale = [sid for sid, at in finished.items() if sid not in self.seen or self.seen[sid][0] != at]
            for i in range(0, len(stale), 500):
                rows = session.execute(select(Submission.id, Submission.finished_at, Submission.result_json)
                                       .where(Submission.id.in_(stale[i:i + 500])))
                for sid, at, raw in rows:
                    if at is not None:  # (always: `stale` holds finished submissions only)
                        self.seen[sid] = (at, _kills(raw))
            out: dict[str, float] = {}
            for _at, kills in self.seen.values():
                for cause, n in kills.items():
                    out[cause] = out.get(cause, 0.0) + n
            return out


def _kills(raw: str | None) -> dict[str, float]:
    try:
        metrics = json.loads(raw or "{}").get("metrics", {})
    except (ValueError, AttributeError):
        return {}
    return {k.removeprefix(KILL_PREFIX): float(v) for k, v in metrics.items()
            if k.startswith(KILL_PREFIX) and isinstance(v, int | float)}


@dataclass(frozen=True, slots=True)
class GradingFigures:
    queued: int
    running: int
    per_minute: float
    outcomes: dict[str, int]
    durations: list[float]
    kills: dict[str, float]


def figures(session: Session, cache: KillCache, *, now: datetime | None = None) -> GradingFigures:
    """The current figures from the database."""
    now = now or utcnow()
    counts = {str(k): int(v) for k, v in session.execute(
        select(Submission.status, func.count(Submission.id)).group_by(Submission.status)).all()}
    rows = session.execute(select(Submission.id, Submission.started_at, Submission.finished_at)
                           .where(Submission.status.in_(FINAL), Submission.finished_at.is_not(None))).all()
    finished = {sid: at for sid, _start, at in rows if at is not None}  # (the query has no None: for the types)
    durations = [max(0.0, (at - start).total_seconds()) for _sid, start, at in rows
                 if start is not None and at is not None]
    recent = sum(1 for at in finished.values() if at >= now - RATE_WINDOW)
    return GradingFigures(
        queued=counts.get(SubmissionStatus.QUEUED.value, 0), running=counts.get(SubmissionStatus.RUNNING.value, 0),
        per_minute=recent / (RATE_WINDOW.total_seconds() / 60.0),
        outcomes={s: counts.get(s, 0) for s in FINAL}, durations=durations, kills=cache.totals(session, finished))


class GradingCollector:
    """A prometheus_client collector yielding the figures of one scrape."""

    def __init__(self, fig: GradingFigures) -> None:
        self.fig = fig

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        f = self.fig
        yield GaugeMetricFamily("autograder_queue_length", "Submissions waiting for a worker", value=f.queued)
        yield GaugeMetricFamily("autograder_gradings_running", "Submissions being graded now", value=f.running)
        yield GaugeMetricFamily("autograder_gradings_per_minute",
                                f"Gradings finished per minute over the last {RATE_WINDOW.seconds // 60} minutes",
                                value=f.per_minute)
        outcomes = CounterMetricFamily("autograder_gradings", "Finished gradings by outcome", labels=["status"])
        for status, n in sorted(f.outcomes.items()):
            outcomes.add_metric([status], n)
        yield outcomes
        buckets = []
        for bound in DURATION_BUCKETS:
            buckets.append((_le(bound), float(sum(1 for d in f.durations if d <= bound))))
        buckets.append(("+Inf", float(len(f.durations))))
        total = sum(f.durations)
        yield HistogramMetricFamily("autograder_grading_duration_seconds",
                                    "Time from a worker's claim to the stored result", buckets=buckets, sum_value=total)
        kills = CounterMetricFamily("autograder_sandbox_kills", "Sandbox processes ended early, by cause",
                                    labels=["cause"])
        for cause, count in sorted(f.kills.items()):
            kills.add_metric([cause], count)
        yield kills


def _le(bound: float) -> str:
    return repr(float(bound))  # "1.0", as prometheus_client writes bucket bounds


def render(session: Session, cache: KillCache) -> bytes:
    """The Prometheus text exposition of the grading figures."""
    from prometheus_client import CollectorRegistry, generate_latest

    reg = CollectorRegistry()
    reg.register(GradingCollector(figures(session, cache)))
    return bytes(generate_latest(reg))
