"""Login and logout."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from rater.auth import service
from rater.auth.forms import EmptyForm, LoginForm
from rater.extensions import db
from rater.security import mark_login

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/"):
        return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("auth/login.html", form=form), status
    username, address = form.username.data.strip(), request.remote_addr or "unknown"
    block = service.login_block(username, address, _login_limits())
    if block is not None:
        return _refused(form, block.message, 429, {"Retry-After": str(block.minutes * 60)})
    user = service.authenticate(username, form.password.data)
    service.record_login_attempt(username, address, succeeded=user is not None)
    db.session.commit()
    if user is None:
        return _refused(form, "Unknown username or wrong password.", 401)
    login_user(user)
    mark_login()
    return redirect(_safe_next(request.args.get("next")))


def _refused(form: LoginForm, message: str, status: int, headers: dict | None = None):
    flash(message, "error")
    return render_template("auth/login.html", form=form), status, headers or {}


def _login_limits() -> service.LoginLimits:
    config = current_app.config
    return service.LoginLimits(
        window=timedelta(minutes=config["RATER_LOGIN_WINDOW_MINUTES"]),
        per_account=config["RATER_LOGIN_MAX_ACCOUNT_FAILURES"],
        per_address=config["RATER_LOGIN_MAX_ADDRESS_FAILURES"],
    )


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    if not EmptyForm().validate_on_submit():
        abort(400)
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
