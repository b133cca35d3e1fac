"""Accounts in the browser: coordinators add and administer users; everyone changes their own
password; a set-password link lets a new or reset user choose theirs.

Every change goes through ``rater.auth.service`` (audited there) and is a CSRF-protected POST.
A password the server generates is shown once, in the response to the POST that made it: never
in a flash message (those travel in the signed, not encrypted, session cookie) nor in a URL.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required

from rater.auth import links, service
from rater.auth.decorators import coordinator_required
from rater.auth.forms import (
    AddUserForm,
    ChangePasswordForm,
    EmptyForm,
    ResetPasswordForm,
    SetPasswordForm,
)
from rater.auth.models import User
from rater.auth.sessions import end_session, start_session
from rater.extensions import db

bp = Blueprint("accounts", __name__)


def _no_store(page: str, status: int = 200) -> Response:
    """Pages that show a password or a set-password link are never cached."""
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _user_or_404(user_id: int) -> User:
    user = service.get_user(user_id)
    if user is None:
        abort(404)
    return user


def _bare_post() -> None:
    if not EmptyForm().validate_on_submit():
        abort(400)


def _users_page(add_form: AddUserForm, status: int = 200):
    return render_template(
        "auth/users.html",
        users=service.list_users(),
        add_form=add_form,
        reset_form=ResetPasswordForm(),
        link_hours=links.link_hours(),
    ), status


@bp.route("/users/")
@coordinator_required
def users():
    return _users_page(AddUserForm())


@bp.route("/users/add", methods=["POST"])
@coordinator_required
def add_user():
    form = AddUserForm()
    if not form.validate_on_submit():
        return _users_page(form, 400)
    try:
        user, password = service.add_account(form.username.data, form.role.data, form.method.data)
    except service.UserError as exc:
        form.username.errors.append(str(exc))
        db.session.rollback()
        return _users_page(form, 400)
    return _credentials(user, form.method.data, password, new=True)


def _credentials(user: User, method: str, password: str, *, new: bool):
    """Commit, then show the password or the link once."""
    token = links.set_password_token(user) if method == "link" else None
    db.session.commit()
    link = url_for("accounts.set_password", token=token, _external=True) if token else None
    page = render_template(
        "auth/credentials.html",
        user=user,
        new=new,
        password=None if token else password,
        link=link,
        link_hours=links.link_hours(),
    )
    return _no_store(page)


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@coordinator_required
def reset_password(user_id: int):
    user = _user_or_404(user_id)
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        abort(400)
    password = service.reset_password(user, form.method.data)
    return _credentials(user, form.method.data, password, new=False)


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@coordinator_required
def deactivate(user_id: int):
    user = _user_or_404(user_id)
    _bare_post()
    problem = service.deactivation_problem(user, current_user)
    if problem:
        flash(f"Not deactivated: {problem}.", "error")
    else:
        service.set_active(user.username, False)
        db.session.commit()
        flash(f"{user.username} is deactivated and logged out; their work is kept.", "success")
    return redirect(url_for("accounts.users"))


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@coordinator_required
def reactivate(user_id: int):
    user = _user_or_404(user_id)
    _bare_post()
    service.set_active(user.username, True)
    db.session.commit()
    flash(f"{user.username} can log in again with their password.", "success")
    return redirect(url_for("accounts.users"))


@bp.route("/users/<int:user_id>/logout", methods=["POST"])
@coordinator_required
def logout_everywhere(user_id: int):
    user = _user_or_404(user_id)
    _bare_post()
    service.end_sessions(user.username)
    db.session.commit()
    if user.id == current_user.id:
        end_session()
        flash("You are logged out everywhere.", "info")
        return redirect(url_for("auth.login"))
    flash(f"{user.username} is logged out in every browser.", "success")
    return redirect(url_for("accounts.users"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            service.change_own_password(
                current_user, form.current_password.data, form.new_password.data
            )
        except service.UserError as exc:
            db.session.rollback()
            form.new_password.errors.append(str(exc))
        else:
            user = current_user._get_current_object()
            db.session.commit()
            start_session(user)  # this browser goes on; every other session has ended
            flash(
                "Your password is changed; you were logged out in every other browser.", "success"
            )
            return redirect(url_for("main.home"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/change_password.html", form=form), status


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    user = links.user_of_token(token)
    if user is None:
        page = render_template("auth/link_invalid.html", link_hours=links.link_hours())
        return _no_store(page, 404)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            service.set_password_from_link(user, form.new_password.data)
        except service.UserError as exc:
            db.session.rollback()
            form.new_password.errors.append(str(exc))
        else:
            db.session.commit()
            if current_user.is_authenticated:
                end_session()
            flash("Your password is set. Please log in.", "success")
            return redirect(url_for("auth.login"))
    status = 400 if form.is_submitted() else 200
    page = render_template("auth/set_password.html", form=form, user=user)
    return _no_store(page, status)
