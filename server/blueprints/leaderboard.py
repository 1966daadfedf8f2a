"""Leaderboard page (renders from the JSON endpoint and polls it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from flask_login import login_required

from server import web
from server.services import assignments as assignment_svc
from server.services import leaderboard as svc

bp = Blueprint("leaderboard", __name__)


@bp.get("/assignments/<name>/leaderboard")
@login_required
def page(name: str) -> Any:
    a = assignment_svc.get_assignment(web.db(), name)
    if a is None:
        abort(404)
    return render_template("leaderboard/page.html", a=a, board=svc.board(web.db(), a, web.user()))


@bp.get("/assignments/<name>/leaderboard.json")
@login_required
def data(name: str) -> Any:
    a = assignment_svc.get_assignment(web.db(), name)
    if a is None:
        abort(404)
    return svc.board(web.db(), a, web.user())
