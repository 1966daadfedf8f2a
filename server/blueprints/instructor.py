"""Instructor and TA pages: queue, submissions with filters, regrades, settings, roster, reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from server import web
from server.forms import ActionForm, AssignmentSettingsForm, CreateAssignmentForm, RosterForm
from server.models import SubmissionStatus
from server.services import accounts, queue, regrades, reports, visibility
from server.services import assignments as assignment_svc

bp = Blueprint("instructor", __name__, url_prefix="/instructor")
MiB = 2**20


def _aware(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None else None


def _naive(d: datetime | None) -> datetime | None:
    return d.astimezone(UTC).replace(tzinfo=None) if d is not None else None


@bp.get("/")
@web.instructor_required
def dashboard() -> Any:
    s = web.db()
    form = CreateAssignmentForm()
    existing = {a.name for a in assignment_svc.list_assignment_rows(s)}
    form.name.choices = [SelectChoice(n) for n in assignment_svc.available_specs() if n not in existing]
    recent = [regrades.regrade_progress(s, r.id) for r in regrades.latest_regrades(s)]
    return render_template("instructor/dashboard.html", queue=queue.queue_overview(s), form=form,
                           assignments=assignment_svc.list_assignment_rows(s), regrades=recent)


@bp.get("/queue.json")
@web.instructor_required
def queue_json() -> Any:
    return queue.queue_overview(web.db())


@bp.post("/assignments")
@web.instructor_required
def create_assignment() -> Any:
    form = CreateAssignmentForm()
    form.name.choices = [SelectChoice(n) for n in assignment_svc.available_specs()]
    if form.validate_on_submit():
        try:
            assignment_svc.ensure_assignment(web.db(), form.name.data or "")
        except assignment_svc.AssignmentError as exc:
            flash(str(exc))
    return redirect(url_for("instructor.dashboard"))


@bp.route("/assignments/<name>/settings", methods=["GET", "POST"])
@web.instructor_required
def assignment_settings(name: str) -> Any:
    a = web.assignment_or_404(name)
    form = AssignmentSettingsForm(obj=None if request.method == "POST" else a)
    if request.method == "GET":
        form.opens_at.data, form.closes_at.data = _naive(a.opens_at), _naive(a.closes_at)
        form.challenge_deadline.data = _naive(a.challenge_deadline)
        form.max_upload_mb.data = max(1, a.max_upload_bytes // MiB)
    error = None
    if form.validate_on_submit():
        try:
            assignment_svc.update_assignment(web.db(), a, assignment_svc.AssignmentUpdate(
                opens_at=_aware(form.opens_at.data), closes_at=_aware(form.closes_at.data),
                challenge_deadline=_aware(form.challenge_deadline.data), upload_limit=int(form.upload_limit.data or 0),
                max_upload_bytes=int(form.max_upload_mb.data or 0) * MiB,
                leaderboard_visibility=form.leaderboard_visibility.data or "",
                leaderboard_counts=form.leaderboard_counts.data or "", bonus_points=form.bonus_points.data or ""))
            flash("Settings saved.")
            return redirect(url_for("instructor.assignment_settings", name=a.name))
        except assignment_svc.AssignmentError as exc:
            error = str(exc)
    return render_template("instructor/settings.html", a=a, form=form, error=error)


@bp.get("/submissions")
@web.instructor_required
def submissions() -> Any:
    def date(v: str) -> datetime | None:
        try:
            return datetime.fromisoformat(v).replace(tzinfo=UTC) if v else None
        except ValueError:
            return None

    args = request.args
    f = queue.SubmissionFilter(assignment=args.get("assignment", ""), student=args.get("student", ""),
                             status=args.get("status", ""), since=date(args.get("since", "")),
                             until=date(args.get("until", "")))
    page = max(1, args.get("page", 1, type=int) or 1)
    rows, total = queue.search(web.db(), f, limit=100, offset=(page - 1) * 100)
    return render_template("instructor/submissions.html", rows=rows, total=total, f=f, page=page,
                           statuses=[s.value for s in SubmissionStatus], action=ActionForm(),
                           assignments=assignment_svc.list_assignment_rows(web.db()))


@bp.get("/submissions/<int:submission_id>/download")
@web.instructor_required
def download(submission_id: int) -> Any:
    return redirect(url_for("submissions.download", submission_id=submission_id))


@bp.post("/submissions/<int:submission_id>/regrade")
@web.instructor_required
def regrade_one(submission_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    sub = visibility.get_submission(web.db(), submission_id)
    if sub is None:
        abort(404)
    rg = regrades.regrade(web.db(), web.dispatch(), assignment=sub.assignment, requested_by=web.user(),
                     submission_ids=[sub.id], scope=f"submission {sub.id}")
    flash(f"Regrade #{rg.id} queued.")
    return web.redirect_back(request.form.get("back"), "submissions.show", submission_id=sub.id)


@bp.post("/assignments/<name>/regrade")
@web.instructor_required
def regrade_many(name: str) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    a = web.assignment_or_404(name)
    student = (request.form.get("student") or "").strip()
    who = None
    if student:
        who = accounts.find_user(web.db(), student)
        if who is None:
            flash(f"No user {student!r}.")
            return redirect(url_for("instructor.dashboard"))
    ids = regrades.regrade_ids(web.db(), a, user=who)
    rg = regrades.regrade(web.db(), web.dispatch(), assignment=a, requested_by=web.user(), submission_ids=ids,
                     scope=f"{a.name}: " + (f"student {who.username}" if who else "all submissions"))
    flash(f"Regrade #{rg.id} queued: {len(ids)} submission(s).")
    return redirect(url_for("instructor.dashboard"))


@bp.get("/regrades/<int:regrade_id>.json")
@web.instructor_required
def regrade_json(regrade_id: int) -> Any:
    p = regrades.regrade_progress(web.db(), regrade_id)
    if p is None:
        abort(404)
    return p


@bp.get("/assignments/<name>/report")
@web.instructor_required
def report(name: str) -> Any:
    a = web.assignment_or_404(name)
    rows = reports.report(web.db(), a, flag_min_uploads=web.settings().flag_min_uploads)
    charts = [reports.svg_bars(reports.score_histogram(rows), title="Counted score distribution"),
              reports.svg_bars(reports.uploads_per_day(web.db(), a), title="Uploads per day (UTC)")]
    return render_template("instructor/report.html", a=a, rows=rows, charts=charts)


@bp.get("/assignments/<name>/report.csv")
@web.instructor_required
def report_csv(name: str) -> Any:
    a = web.assignment_or_404(name)
    rows = reports.report(web.db(), a, flag_min_uploads=web.settings().flag_min_uploads)
    return Response(reports.to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{a.name}-report.csv"'})


@bp.route("/roster", methods=["GET", "POST"])
@web.instructor_required
def roster() -> Any:
    form = RosterForm()
    imported: list[accounts.ImportedUser] = []
    error = None
    if form.validate_on_submit():
        f = form.file.data
        text = f.read().decode("utf-8", errors="replace") if f and getattr(f, "filename", "") else (form.text.data or "")
        try:
            imported = accounts.import_roster(web.db(), text)
        except accounts.AccountError as exc:
            error = str(exc)
    return render_template("instructor/roster.html", form=form, imported=imported, error=error,
                           users=accounts.list_users(web.db()))
