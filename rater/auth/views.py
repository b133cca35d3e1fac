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
from flask_login import current_user, login_required

from rater.auth import service
from rater.auth.forms import EmptyForm, LoginForm
from rater.auth.sessions import end_session, start_session
from rater.extensions import db

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
    attempt = service.count_login_attempt(username, address, _login_limits())
    # Committed before the password is checked (this view's first of two commits): the
    # attempt counts for every simultaneous login from now on, and the lock is released.
    db.session.commit()
    if isinstance(attempt, service.LoginBlock):
        return _refused(form, attempt.message, 429, {"Retry-After": str(attempt.minutes * 60)})
    user = service.authenticate(username, form.password.data)
    if user is None:
        return _refused(form, "Unknown username or wrong password.", 401)
    service.login_succeeded(attempt)
    start_session(user)
    db.session.commit()
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
    service.log_out(current_user)
    db.session.commit()
    end_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
