"""JSON API with bearer-token auth: uploads, status, reports, leaderboard. Described at /api/v1/openapi.json."""

from __future__ import annotations

from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, g, request, url_for

from server import web
from server.models import User
from server.services import accounts
from server.services import assignments as assignment_svc
from server.services import leaderboard as lb
from server.services import submissions as svc

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F")


def token_required(view: F) -> F:
    @wraps(view)  # type: ignore[arg-type]
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        user = accounts.user_for_api_token(web.db(), token) if token else None
        if user is None:
            return {"error": "missing, wrong or expired token"}, 401, {"WWW-Authenticate": "Bearer"}
        g.api_user = user
        return view(*args, **kwargs)  # type: ignore[operator]

    return cast(F, wrapped)


def _user() -> User:
    return cast(User, g.api_user)


@bp.get("/openapi.json")
def openapi() -> Any:
    return OPENAPI


@bp.get("/assignments")
@token_required
def assignments() -> Any:
    s = web.db()
    return {"assignments": [{
        "name": a.name, "title": a.title, "open": a.is_open(svc.utcnow()), "upload_limit": a.upload_limit,
        "uploads_used": svc.uploads_used(s, _user(), a), "max_upload_bytes": a.max_upload_bytes,
        "closes_at": a.closes_at.isoformat() if a.closes_at else None,
    } for a in assignment_svc.list_assignment_rows(s)]}


@bp.post("/assignments/<name>/submissions")
@token_required
def upload(name: str) -> Any:
    a = web.assignment_or_404(name)
    g.upload_limit = a.max_upload_bytes
    if request.content_length is not None and request.content_length > a.max_upload_bytes + 64 * 1024:
        return {"error": svc.too_large_message(a.max_upload_bytes), "limit_bytes": a.max_upload_bytes}, 413
    request.max_content_length = a.max_upload_bytes + 64 * 1024
    f = request.files.get("file")
    try:
        if f is None or not f.filename:
            svc.check_can_upload(web.db(), _user(), a)
            raise svc.UploadRefused("send the zip as multipart form field 'file'")
        sub = svc.submit_upload(web.db(), web.settings(), web.dispatch(), user=_user(), assignment=a,
                                stream=f.stream, filename=f.filename, via="api")
    except svc.UploadRefused as exc:
        return {"error": exc.message}, exc.status
    body = svc.state_dict(web.db(), sub)
    body["uploads_used"] = sub.upload_number
    body["upload_limit"] = a.upload_limit
    return body, 201, {"Location": url_for("api.submission", submission_id=sub.id)}


@bp.get("/submissions")
@token_required
def submissions() -> Any:
    return {"submissions": [svc.state_dict(web.db(), s) | {"result": None} for s in svc.history(web.db(), _user())]}


@bp.get("/submissions/<int:submission_id>")
@token_required
def submission(submission_id: int) -> Any:
    try:
        sub = svc.visible_submission(web.db(), _user(), submission_id)
    except svc.Forbidden:
        return {"error": "forbidden"}, 403
    if sub is None:
        abort(404)
    return svc.state_dict(web.db(), sub, for_instructor=_user().is_instructor)


@bp.get("/assignments/<name>/leaderboard")
@token_required
def leaderboard(name: str) -> Any:
    return lb.board(web.db(), web.assignment_or_404(name), _user())


_SUB = {"type": "object", "properties": {
    "id": {"type": "integer"}, "assignment": {"type": "string"}, "upload_number": {"type": "integer"},
    "status": {"type": "string", "enum": ["queued", "running", "graded", "rejected", "error"]},
    "queue_position": {"type": ["integer", "null"]}, "current_check": {"type": "string"},
    "checks_done": {"type": "integer"}, "checks_total": {"type": "integer"},
    "score": {"type": ["number", "null"]}, "max_score": {"type": ["number", "null"]},
    "passed": {"type": ["boolean", "null"]}, "message": {"type": "string"},
    "result": {"description": "the grader's result JSON (schema 1) once graded or rejected",
               "type": ["object", "null"]}}}
_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}}


def _ok(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "nn-autograder API", "version": "1",
             "description": "Upload submissions, follow their grading, read reports and the leaderboard. "
                            "Authenticate with `Authorization: Bearer <token>` (create one on /auth/tokens "
                            "or with `autograder token create NAME`)."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": {"Submission": _SUB}},
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/assignments": {"get": {"summary": "Assignments with your upload count",
                                        "responses": {"200": _ok({"type": "object"}), "401": _ERR}}},
        "/api/v1/assignments/{name}/submissions": {"post": {
            "summary": "Upload a submission zip",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"]}}}},
            "responses": {"201": _ok({"$ref": "#/components/schemas/Submission"}, "queued"),
                          "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR, "409": _ERR,
                          "413": _ERR, "429": _ERR}}},
        "/api/v1/submissions": {"get": {"summary": "Your submissions, newest first",
                                        "responses": {"200": _ok({"type": "object"}), "401": _ERR}}},
        "/api/v1/submissions/{id}": {"get": {
            "summary": "A submission's state and, once finished, its report",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": _ok({"$ref": "#/components/schemas/Submission"}), "401": _ERR, "403": _ERR,
                          "404": _ERR}}},
        "/api/v1/assignments/{name}/leaderboard": {"get": {
            "summary": "The leaderboard as you may see it",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _ok({"type": "object"}), "401": _ERR, "404": _ERR}}},
    },
}
