"""Login, logout, first-login password setup, API tokens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from server import web
from server.blueprints import login_required
from server.forms import ActionForm, LoginForm, SetupForm, TokenForm
from server.services import accounts

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("submissions.index"))
    form = LoginForm()
    if form.validate_on_submit():
        s = web.settings()
        try:
            user = accounts.authenticate(web.db(), form.username.data or "", form.password.data or "",
                                         ip=request.remote_addr or "?", max_failures=s.login_max_failures,
                                         window_seconds=s.login_window_seconds)
        except accounts.TooManyAttempts as exc:
            return (render_template("auth/login.html", form=form, error=str(exc)), 429,
                    {"Retry-After": str(exc.retry_after)})
        if user is None:
            return render_template("auth/login.html", form=form, error="Wrong username or password."), 401
        login_user(user)
        return web.redirect_back(request.args.get("next"), "submissions.index")
    return render_template("auth/login.html", form=form, error=None)


@bp.post("/logout")
def logout() -> Any:
    if ActionForm().validate_on_submit() and current_user.is_authenticated:
        accounts.end_sessions(web.user())  # every copy of every session cookie of this user, on any device
        web.db().commit()
        logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str) -> Any:
    user = accounts.user_for_setup_token(web.db(), token)
    if user is None:
        return render_template("error.html", code=404, title="Link expired",
                               message="This link is invalid or has expired. Ask your instructor for a new one."), 404
    form = SetupForm()
    if form.validate_on_submit():
        try:
            accounts.complete_setup(web.db(), token, form.password.data or "")
        except accounts.AccountError as exc:
            return render_template("auth/setup.html", form=form, user=user, error=str(exc)), 400
        flash("Your password is set. Log in with it.")
        return redirect(url_for("auth.login"))
    return render_template("auth/setup.html", form=form, user=user, error=None)


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    form = TokenForm()
    token = None
    if form.validate_on_submit():
        token = accounts.create_api_token(web.db(), web.user(), name=form.name.data or "web")
    return render_template("auth/tokens.html", form=form, token=token, action=ActionForm(),
                           tokens=accounts.list_tokens(web.db(), web.user()))


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    if not accounts.revoke_token(web.db(), web.user(), token_id):
        abort(404)
    flash("Token revoked.")
    return redirect(url_for("auth.tokens"))
