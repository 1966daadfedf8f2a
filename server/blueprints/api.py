"""JSON API with bearer-token auth: uploads, status, reports, leaderboard. Bodies are `server.schemas` models;
the OpenAPI description at /api/v1/openapi.json is generated from them."""

from __future__ import annotations

from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, abort, current_app, g, request, url_for

from server import schemas, web
from server.models import User, utcnow
from server.services import accounts, uploads, visibility
from server.services import assignments as assignment_svc
from server.services import leaderboard as lb

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F")


def token_required(view: F) -> F:
    @wraps(view)  # type: ignore[arg-type]
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        user = accounts.user_for_api_token(web.db(), token) if token else None
        if user is None:
            return schemas.Error(error="missing, wrong or expired token").body(), 401, {"WWW-Authenticate": "Bearer"}
        g.api_user = user
        return view(*args, **kwargs)  # type: ignore[operator]

    return cast(F, wrapped)


def _user() -> User:
    return cast(User, g.api_user)


def describe(app: Flask) -> dict[str, Any]:
    """The OpenAPI description of this app's API (its URL rules, the `server.schemas` models)."""
    rules = tuple((r.rule, m, r.endpoint) for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")
                  for m in sorted((r.methods or set()) - {"HEAD", "OPTIONS"}))
    return schemas.openapi(rules)


@bp.get("/openapi.json")
def openapi() -> Any:
    return describe(current_app)


@bp.get("/assignments")
@token_required
def assignments() -> Any:
    s = web.db()
    return schemas.Assignments(assignments=[schemas.AssignmentInfo(
        name=a.name, title=a.title, open=a.is_open(utcnow()), upload_limit=a.upload_limit,
        uploads_used=uploads.uploads_used(s, _user(), a), max_upload_bytes=a.max_upload_bytes,
        closes_at=a.closes_at.isoformat() if a.closes_at else None,
    ) for a in assignment_svc.list_assignment_rows(s)]).body()


@bp.post("/assignments/<name>/submissions")
@token_required
def upload(name: str) -> Any:
    a = web.assignment_or_404(name)
    g.upload_limit = a.max_upload_bytes
    if request.content_length is not None and request.content_length > a.max_upload_bytes + 64 * 1024:
        return schemas.Error(error=uploads.too_large_message(a.max_upload_bytes), limit_bytes=a.max_upload_bytes).body(), 413
    request.max_content_length = a.max_upload_bytes + 64 * 1024
    f = request.files.get("file")
    try:
        if f is None or not f.filename:
            uploads.check_can_upload(web.db(), _user(), a)
            raise uploads.UploadRefused("send the zip as multipart form field 'file'")
        sub = uploads.submit_upload(web.db(), web.settings(), web.dispatch(), user=_user(), assignment=a,
                                stream=f.stream, filename=f.filename, via="api")
    except uploads.UploadRefused as exc:
        return schemas.Error(error=exc.message).body(), exc.status
    body = schemas.Uploaded(**visibility.state_dict(web.db(), sub), uploads_used=sub.upload_number,
                            upload_limit=a.upload_limit).body()
    return body, 201, {"Location": url_for("api.submission", submission_id=sub.id)}


@bp.get("/submissions")
@token_required
def submissions() -> Any:
    return schemas.Submissions(submissions=[schemas.Submission(**visibility.state_dict(web.db(), s) | {"result": None})
                                            for s in visibility.history(web.db(), _user())]).body()


@bp.get("/submissions/<int:submission_id>")
@token_required
def submission(submission_id: int) -> Any:
    try:
        sub = visibility.visible_submission(web.db(), _user(), submission_id)
    except visibility.Forbidden:
        return schemas.Error(error="forbidden").body(), 403
    if sub is None:
        abort(404)
    return schemas.Submission(**visibility.state_dict(web.db(), sub, for_instructor=_user().is_instructor)).body()


@bp.get("/assignments/<name>/leaderboard")
@token_required
def leaderboard(name: str) -> Any:
    return schemas.Leaderboard.model_validate(lb.board(web.db(), web.assignment_or_404(name), _user())).body()
