"""Worker-facing endpoints, authenticated by an HMAC of each request with the shared internal secret.

Workers fetch zips and post progress and results here, so they need neither database credentials nor a
shared disk. These routes never use the session cookie and are exempt from CSRF (no browser involved).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request, send_file
from pydantic import ValidationError

from server import web
from server.security import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from server.services import claims, finishing, reuse

bp = Blueprint("internal", __name__, url_prefix="/internal")


@bp.before_request
def _authenticate() -> None:
    path = request.path + ("?" + request.query_string.decode() if request.query_string else "")
    body = request.get_data(cache=True)
    if not verify(web.settings().internal_secret, request.method, path, body,
                  request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)):
        abort(401)


def _json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400)
    return data


@bp.errorhandler(claims.Conflict)
def _conflict(e: claims.Conflict) -> Any:
    return {"error": str(e)}, 409


@bp.errorhandler(401)
def _unauthorized(_e: Exception) -> Any:
    return {"error": "bad or missing signature"}, 401


@bp.post("/submissions/<int:sid>/claim")
def claim(sid: int) -> Any:
    d = _json()
    c = claims.claim(web.db(), web.settings(), sid, hostname=str(d.get("hostname", "")),
                     task_id=str(d.get("task_id") or ""))
    return {**c.info(), "reuse": _reuse(c.submission)}


@bp.post("/claim")
def claim_next() -> Any:
    """A wake-up of a lane's queue: the best waiting submission that queue may take, by lane and fair share (409
    when none waits), with the phase and checks to grade."""
    d = _json()
    c = claims.claim_next(web.db(), web.settings(), hostname=str(d.get("hostname", "")),
                          task_id=str(d.get("task_id") or ""), lane=str(d.get("lane") or ""),
                          dispatch=web.dispatch())
    return {**c.info(), "reuse": _reuse(c.submission)}


def _reuse(sub: Any) -> bool:
    return web.settings().reuse_verdicts and reuse.offers_reuse(sub)


@bp.get("/submissions/<int:sid>/zip")
def zip_file(sid: int) -> Any:
    path = claims.zip_path_for_claim(web.db(), web.settings(), sid, request.args.get("claim", ""))
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=f"{sid}.zip")


@bp.post("/submissions/<int:sid>/progress")
def progress(sid: int) -> Any:
    d = _json()
    check = d.get("check")
    try:
        verdict = claims.verdict_of(d["verdict"]) if d.get("verdict") is not None else None
    except (ValueError, ValidationError):
        abort(400)
    claims.progress(web.db(), web.settings(), sid, str(d.get("claim", "")),
                    check=str(check) if check else None, hostname=str(d.get("hostname", "")), verdict=verdict)
    return {"ok": True}


@bp.post("/submissions/<int:sid>/result")
def result(sid: int) -> Any:
    d = _json()
    if not isinstance(d.get("result"), dict):
        abort(400)
    status = finishing.finish(web.db(), web.settings(), sid, str(d.get("claim", "")), d["result"],
                              hostname=str(d.get("hostname", "")), phase=str(d.get("phase") or ""),
                              dispatch=web.dispatch(), kept=d.get("kept"))
    return {"status": status}


@bp.post("/submissions/<int:sid>/reuse")
def reuse_lookup(sid: int) -> Any:
    """Earlier verdicts of this student's under the checks' input keys ({"keys": {check id: key}})."""
    d = _json()
    sub = claims.held(web.db(), sid, str(d.get("claim", "")))
    keys = d.get("keys")
    if not isinstance(keys, dict):
        abort(400)
    return {"verdicts": reuse.lookup(web.db(), sub, keys) if _reuse(sub) else {}}


@bp.post("/submissions/<int:sid>/fail")
def fail(sid: int) -> Any:
    d = _json()
    status = finishing.fail(web.db(), web.settings(), sid, str(d.get("claim", "")),
                            reason=str(d.get("reason", ""))[:4000])
    return {"status": status}


@bp.post("/workers/heartbeat")
def heartbeat() -> Any:
    claims.worker_heartbeat(web.db(), str(_json().get("hostname", "")))
    return {"ok": True}
