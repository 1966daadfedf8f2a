"""Grading report per assignment: pass, points, bonus by rank at the challenge deadline, flags, CSV, plots."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from server.models import Assignment, Role, Submission, SubmissionStatus, User
from server.services.leaderboard import ranked


@dataclass(frozen=True, slots=True)
class ReportRow:
    username: str
    name: str
    passed: bool
    points: float | None
    bonus: float
    bonus_rank: int | None
    best: float | None
    counted: float | None
    uploads: int
    last_upload: datetime | None
    flagged: bool


def flag_threshold(uploads: list[int], minimum: int) -> int:
    """Uploads at or above this are flagged: max(minimum, 3 x the median of students who uploaded)."""
    active = [u for u in uploads if u > 0]
    median = statistics.median(active) if active else 0
    return max(minimum, int(3 * median))


def report(session: Session, assignment: Assignment, *, flag_min_uploads: int) -> list[ReportRow]:
    students = list(session.scalars(select(User).where(User.role == Role.STUDENT.value).order_by(User.username)))
    agg = {r.user_id: r for r in session.execute(
        select(Submission.user_id, func.count(Submission.id).label("n"), func.max(Submission.created_at).label("last"),
               func.max(Submission.score).filter(Submission.status == SubmissionStatus.GRADED.value).label("points"),
               func.max(Submission.lb_value).label("best"),
               func.max(case((Submission.passed.is_(True), 1), else_=0)).label("passed"))
        .where(Submission.assignment_id == assignment.id).group_by(Submission.user_id)).all()}
    counted = {r.user_id: r.value for r in ranked(session, assignment)}
    bonus_rank: dict[int, int] = {}
    if assignment.challenge_deadline is not None:
        for r in ranked(session, assignment, cutoff=assignment.challenge_deadline, passed_only=True):
            bonus_rank[r.user_id] = r.rank
    bonus = assignment.bonus_list
    threshold = flag_threshold([agg[s.id].n if s.id in agg else 0 for s in students], flag_min_uploads)
    rows = []
    for s in students:
        a = agg.get(s.id)
        n = int(a.n) if a else 0
        rank = bonus_rank.get(s.id)
        rows.append(ReportRow(
            username=s.username, name=s.name, passed=bool(a and a.passed), points=a.points if a else None,
            bonus=bonus[rank - 1] if rank is not None and rank <= len(bonus) else 0.0, bonus_rank=rank,
            best=a.best if a else None, counted=counted.get(s.id), uploads=n, last_upload=a.last if a else None,
            flagged=n >= threshold and n > 0,
        ))
    return rows


def to_csv(rows: list[ReportRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["username", "name", "passed", "points", "bonus", "bonus_rank", "best", "counted", "uploads",
                "last_upload", "flagged_many_uploads"])
    for r in rows:
        w.writerow([r.username, r.name, "yes" if r.passed else "no", _num(r.points), _num(r.bonus),
                    r.bonus_rank or "", _num(r.best), _num(r.counted), r.uploads,
                    r.last_upload.isoformat() if r.last_upload else "", "yes" if r.flagged else "no"])
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}".rstrip("0").rstrip(".")


def svg_bars(values: list[tuple[str, int]], *, title: str, width: int = 520, height: int = 180) -> str:
    """A small inline SVG bar chart (labels under bars); no JavaScript, no external library."""
    if not values:
        return f'<p class="muted">{escape(title)}: no data yet.</p>'
    top = max(v for _, v in values) or 1
    bw = (width - 20) / len(values)
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height + 30}" '
             f'width="{width}" height="{height + 30}"><title>{escape(title)}</title>']
    for i, (label, v) in enumerate(values):
        h = (height - 20) * v / top
        x = 10 + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - h:.1f}" width="{max(bw - 2, 1):.1f}" height="{h:.1f}">'
                     f'<title>{escape(label)}: {v}</title></rect>')
        if len(values) <= 12 or i % max(1, len(values) // 8) == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{height + 14}" text-anchor="middle">{escape(label)}</text>')
        if v:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - h - 3:.1f}" text-anchor="middle">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


def score_histogram(rows: list[ReportRow]) -> list[tuple[str, int]]:
    vals = [r.counted for r in rows if r.counted is not None]
    if not vals:
        return []
    bins = [0] * 10
    for v in vals:
        bins[min(9, max(0, int(v * 10)))] += 1
    return [(f"{i * 10}%", n) for i, n in enumerate(bins)]


def uploads_per_day(session: Session, assignment: Assignment) -> list[tuple[str, int]]:
    stamps = session.scalars(select(Submission.created_at).where(Submission.assignment_id == assignment.id))
    counts: dict[str, int] = {}
    for t in stamps:
        key = t.strftime("%m-%d")
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())
