"""Student pages: dashboard, assignment page with upload form and history, live submission page."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, send_file, url_for

from server import storage, web
from server.blueprints import csrf_exempt, login_required
from server.forms import ActionForm, UploadForm
from server.markdown import render as render_markdown
from server.models import Assignment, utcnow
from server.services import assignments as assignment_svc
from server.services import uploads, visibility

bp = Blueprint("submissions", __name__)
FORM_OVERHEAD = 64 * 1024


def _visible(submission_id: int) -> Any:
    try:
        sub = visibility.visible_submission(web.db(), web.user(), submission_id)
    except visibility.Forbidden:
        abort(403)
    if sub is None:
        abort(404)
    return sub


@bp.get("/")
@login_required
def index() -> Any:
    s = web.db()
    rows = [(a, uploads.uploads_used(s, web.user(), a)) for a in assignment_svc.list_assignment_rows(s)]
    return render_template("submissions/index.html", rows=rows, history=visibility.history(s, web.user())[:20])


@bp.get("/assignments/<name>")
@login_required
def assignment(name: str) -> Any:
    a = web.assignment_or_404(name)
    return _assignment_page(a, UploadForm(), None, 200)


def _assignment_page(a: Assignment, form: UploadForm, error: str | None, code: int) -> Any:
    s = web.db()
    page: Any = ""
    with contextlib.suppress(Exception):
        page = render_markdown(assignment_svc.spec_for(a.name).student_page)
    return render_template("submissions/assignment.html", a=a, form=form, error=error, page=page,
                           used=uploads.uploads_used(s, web.user(), a), history=visibility.history(s, web.user(), a),
                           now=utcnow()), code


@bp.post("/assignments/<name>/upload")
@csrf_exempt
@login_required
def upload(name: str) -> Any:
    a = web.assignment_or_404(name)
    g.upload_limit = a.max_upload_bytes
    if request.content_length is not None and request.content_length > a.max_upload_bytes + FORM_OVERHEAD:
        return _refused(a, uploads.UploadRefused(uploads.too_large_message(a.max_upload_bytes), 413))
    request.max_content_length = a.max_upload_bytes + FORM_OVERHEAD
    web.csrf.protect()
    form = UploadForm()
    f = form.file.data
    try:
        if f is None or not getattr(f, "filename", ""):
            uploads.check_can_upload(web.db(), web.user(), a)
            raise uploads.UploadRefused("Choose a zip file to upload.")
        sub = uploads.submit_upload(web.db(), web.settings(), web.dispatch(), user=web.user(), assignment=a,
                                stream=f.stream, filename=f.filename or "", via="web")
    except uploads.UploadRefused as exc:
        return _refused(a, exc)
    return redirect(url_for("submissions.show", submission_id=sub.id))


def _refused(a: Assignment, exc: uploads.UploadRefused) -> Any:
    if exc.status == 413:
        return render_template("error.html", code=413, title="File too large", message=exc.message), 413
    return _assignment_page(a, UploadForm(), exc.message, exc.status)


@bp.get("/submissions/<int:submission_id>")
@login_required
def show(submission_id: int) -> Any:
    sub = _visible(submission_id)
    state = visibility.state_dict(web.db(), sub, for_instructor=web.user().is_instructor)
    return render_template("submissions/show.html", sub=sub, state=state, action=ActionForm())


@bp.get("/submissions/<int:submission_id>.json")
@login_required
def show_json(submission_id: int) -> Any:
    sub = _visible(submission_id)
    return visibility.state_dict(web.db(), sub, for_instructor=web.user().is_instructor)


@bp.get("/submissions/<int:submission_id>/download")
@login_required
def download(submission_id: int) -> Any:
    sub = _visible(submission_id)
    path = storage.path_of(web.settings().upload_dir, sub.stored_name)
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"{sub.assignment.name}-{sub.user.username}-{sub.upload_number}.zip")
