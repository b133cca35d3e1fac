"""Allocation: design preview, calibration, progress, sessions (coordinators only).

Views are thin: parse the form, call the service, commit once, render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from rater.allocation import batches, changes, planning, settings
from rater.allocation import calibration as calib
from rater.allocation import sessions as session_list
from rater.allocation.errors import AllocationError
from rater.allocation.forms import (
    AllocationForm,
    DrawCalibrationForm,
    GateForm,
    MoveForm,
    PickCalibrationForm,
    RaterChangeForm,
    ReleaseForm,
)
from rater.allocation.ordering import QueueOrder
from rater.allocation.progress import progress as allocation_progress
from rater.auth.decorators import coordinator_required
from rater.auth.forms import EmptyForm
from rater.extensions import db
from rater.formatting import plural
from rater.rating.models import Assignment
from rater.states import AssignmentStatus

bp = Blueprint("allocation", __name__, url_prefix="/allocation")


@bp.app_template_filter("state_label")
def state_label(value: str) -> str:
    """An assignment state in words ("in progress"), for every template."""
    return AssignmentStatus.label(value)


def _refused(exc: Exception, endpoint: str, **values: Any) -> Response:
    db.session.rollback()
    flash(f"Refused: {exc}", "error")
    return redirect(url_for(endpoint, **values))


def _form_errors(form) -> str:
    return "; ".join(
        f"{form[name].label.text}: {' '.join(errs)}" for name, errs in form.errors.items()
    )


@bp.route("/")
@coordinator_required
def index():
    if request.args:
        form = AllocationForm(formdata=request.args, meta={"csrf": False})
        valid = form.validate()
    else:
        form = AllocationForm(
            formdata=None,
            meta={"csrf": False},
            double_fraction=settings.double_fraction_or_stored(),
            seed=settings.seed_or_stored(),
            keep_unstarted=planning.rating_started(),
        )
        valid = True
    plan, error = None, None
    if valid:
        try:
            plan = planning.plan(
                form.double_fraction.data, form.seed.data, keep_unstarted=form.keep_unstarted.data
            )
        except AllocationError as exc:
            error = str(exc)
    else:
        error = _form_errors(form)
    commit_form = AllocationForm(
        formdata=None,
        double_fraction=form.double_fraction.data,
        seed=form.seed.data,
        keep_unstarted=form.keep_unstarted.data,
        digest=plan.digest if plan else "",
    )
    return render_template(
        "allocation/index.html",
        form=form,
        commit_form=commit_form,
        plan=plan,
        error=error,
        gate=calib.gate_status(),
    )


@bp.route("/commit", methods=["POST"])
@coordinator_required
def commit():
    """First POST: say what committing changes; the confirmed POST writes it."""
    form = AllocationForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for(".index"))
    params = {
        "double_fraction": form.double_fraction.data,
        "seed": form.seed.data,
        "keep_unstarted": "y" if form.keep_unstarted.data else "",
    }
    confirmed = form.confirmed.data == "yes"
    try:
        if confirmed:
            settings.put_setting(calib.RELEASE_IN_BATCHES, bool(form.release_in_batches.data))
        plan = planning.plan(
            form.double_fraction.data, form.seed.data, keep_unstarted=form.keep_unstarted.data
        )
        if plan.digest != form.digest.data:
            db.session.rollback()
            flash("The study changed since the preview; review the new preview.", "error")
            return redirect(url_for(".index", **params))
        if not confirmed:
            db.session.rollback()
            return _confirm_commit(form, plan)
        planning.apply_plan(plan)
    except AllocationError as exc:
        return _refused(exc, ".index", **params)
    db.session.commit()
    message = plan.plain_summary()
    if plan.hold_new and plan.counts["created"]:
        message += " New work is held until you release it."
    flash(message, "success")
    return redirect(url_for(".batches_page" if plan.hold_new else ".progress"))


def _confirm_commit(form: AllocationForm, plan: planning.AllocationPlan) -> str:
    form.confirmed.data = "yes"
    if not form.is_submitted() or "release_in_batches" not in request.form:
        form.release_in_batches.data = bool(settings.get_setting(calib.RELEASE_IN_BATCHES, False))
    return render_template(
        "allocation/confirm_commit.html", form=form, plan=plan, gate=calib.gate_status()
    )


@bp.route("/progress")
@coordinator_required
def progress():
    days = request.args.get("days", 14, type=int)
    days = 14 if days is None or days < 0 else min(days, 3650)
    return render_template("allocation/progress.html", progress=allocation_progress(days))


@bp.route("/sessions")
@coordinator_required
def sessions():
    filters = session_list.SessionFilters(
        **{
            k: request.args.get(k, "").strip()[:64]
            for k in ("therapist", "patient", "phase", "rater", "state")
        }
    )
    page = request.args.get("page", 1, type=int) or 1
    result = session_list.session_page(filters, page=page)
    query = {k: v for k, v in asdict(filters).items() if v}
    return render_template("allocation/sessions.html", page=result, filters=filters, query=query)


# ----------------------------------------------------------------------------- calibration


@bp.route("/calibration")
@coordinator_required
def calibration():
    return render_template(
        "allocation/calibration.html",
        gate=calib.gate_status(),
        sessions=calib.calibration_sessions(),
        rows=calib.calibration_assignments(),
        draw_form=DrawCalibrationForm(),
        pick_form=PickCalibrationForm(),
        gate_form=_gate_form(),
    )


def _gate_form() -> GateForm:
    status = calib.gate_status()
    return GateForm(formdata=None, enabled=status.enabled, threshold=status.threshold)


def _submit(form, action: Callable[[], str], back: str = ".calibration") -> Response:
    """Validate a POST form, run the service action, commit once, flash its message."""
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for(back))
    try:
        message = action()
    except AllocationError as exc:
        return _refused(exc, back)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(back))


@bp.route("/calibration/draw", methods=["POST"])
@coordinator_required
def calibration_draw():
    form = DrawCalibrationForm()

    def action() -> str:
        codes = calib.draw_sessions(form.n.data, form.seed.data)
        return _calibration_message(
            calib.add_calibration_sessions(codes, exclude=form.exclude.data)
        )

    return _submit(form, action)


@bp.route("/calibration/pick", methods=["POST"])
@coordinator_required
def calibration_pick():
    form = PickCalibrationForm()
    return _submit(
        form,
        lambda: _calibration_message(
            calib.add_calibration_sessions(form.codes, exclude=form.exclude.data)
        ),
    )


def _calibration_message(change: calib.CalibrationChange) -> str:
    return (
        f"Calibration sessions {', '.join(change.sessions)}: {change.created} assignment(s)"
        f" created, {change.removed} main assignment(s) removed, {change.excluded} excluded"
        " from the main pool. Preview the allocation again to rebalance the main design."
    )


@bp.route("/calibration/gate", methods=["POST"])
@coordinator_required
def calibration_gate():
    """First POST: say what the new gate settings do; the confirmed POST saves them."""
    form = GateForm()
    if form.validate() and form.confirmed.data != "yes":
        change = calib.gate_change(form.enabled.data, form.threshold.data)
        form.confirmed.data = "yes"
        return render_template("allocation/confirm_gate.html", form=form, change=change)

    def action() -> str:
        held = calib.set_gate(form.enabled.data, form.threshold.data)
        message = "Gate settings saved."
        if held:
            message += f" {plural(held, 'pending main assignment')} held back."
        if form.release.data:
            message += " " + batches.release().summary()
        else:
            still = calib.gate_status()
            if still.held and still.passes:
                message += (
                    f" {plural(still.held, 'main assignment')} stay held: release them"
                    " under Batches when you are ready."
                )
        return message

    return _submit(form, action)


@bp.route("/calibration/release", methods=["POST"])
@coordinator_required
def calibration_release():
    return _submit(
        EmptyForm(),
        lambda: f"{batches.release_held()} main assignment(s) released to the raters.",
    )


# ----------------------------------------------------------------------------- mid-study


@bp.route("/raters")
@coordinator_required
def raters():
    return render_template(
        "allocation/raters.html",
        progress=allocation_progress(),
        form=_rater_form(),
    )


def _rater_form() -> RaterChangeForm:
    form = RaterChangeForm()
    form.rater.choices = [(n, n) for n in settings.rater_names()]
    return form


@bp.route("/raters/<any(join, leave):action>", methods=["POST"])
@coordinator_required
def rater_change(action: str):
    form = _rater_form()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for(".raters"))
    dry_run = not form.confirm.data
    try:
        if action == "join":
            plan = changes.rater_joins(form.rater.data, dry_run=dry_run)
        else:
            plan = changes.rater_leaves(
                form.rater.data, deactivate=form.deactivate.data, dry_run=dry_run
            )
    except AllocationError as exc:
        return _refused(exc, ".raters")
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    title = f"{form.rater.data} {'joins' if action == 'join' else 'leaves'} allocation"
    if dry_run:
        form.confirm.data = True
    return render_template(
        "allocation/change.html",
        title=title,
        before=plan.before,
        after=plan.after,
        summary=plan.plain_summary(),
        notes=plan.notes,
        applied=not dry_run,
        apply_form=None if not dry_run else form,
        action=action,
    )


@bp.route("/assignments/<int:assignment_id>/move", methods=["GET", "POST"])
@coordinator_required
def move(assignment_id: int):
    """GET: choose a rater and give a reason; first POST: confirm; confirmed POST: move."""
    assignment = db.get_or_404(Assignment, assignment_id)
    form = MoveForm()
    form.rater.choices = [(n, n) for n in changes.move_targets(assignment)]
    if request.method == "GET":
        return render_template("allocation/move.html", assignment=assignment, form=form)
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for(".move", assignment_id=assignment_id))
    if form.confirmed.data != "yes":
        form.confirmed.data = "yes"
        return render_template(
            "allocation/confirm_move.html",
            assignment=assignment,
            form=form,
            sentence=changes.describe_move(assignment, form.rater.data),
        )
    try:
        result = changes.move_assignment(assignment_id, form.rater.data, form.reason.data)
    except AllocationError as exc:
        return _refused(exc, ".move", assignment_id=assignment_id)
    db.session.commit()
    return render_template(
        "allocation/change.html",
        title=f"Assignment {assignment_id} moved to {form.rater.data}",
        before=result.before,
        after=result.after,
        summary=f"1 assignment moved (audited, reason: {form.reason.data.strip()}).",
        applied=True,
        apply_form=None,
        action=None,
    )


# ----------------------------------------------------------------------------- batches


def _release_form(*, bound: bool = True) -> ReleaseForm:
    """The batch form with the study's phases and therapists (bound: to the POSTed data)."""
    form = ReleaseForm() if bound else ReleaseForm(formdata=None)
    options = session_list.filter_options()
    form.phase.choices = [("", "any")] + [(p, p) for p in options["phase"]]
    form.therapist.choices = [("", "any")] + [(t, t) for t in options["therapist"]]
    form.order.choices = list(ReleaseForm.ORDERS)
    return form


@bp.route("/batches")
@coordinator_required
def batches_page():
    return render_template(
        "allocation/batches.html",
        form=_release_form(bound=False),
        rows=batches.batch_progress(),
        gate=calib.gate_status(),
        in_batches=bool(settings.get_setting(calib.RELEASE_IN_BATCHES, False)),
    )


@bp.route("/batches/release", methods=["POST"])
@coordinator_required
def release():
    """First POST: say what the batch releases; the confirmed POST releases it."""
    form = _release_form()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for(".batches_page"))
    options = {
        "per_rater": form.per_rater.data,
        "phase": form.phase.data or None,
        "therapist": form.therapist.data or None,
        "order": QueueOrder(form.order.data),
    }
    try:
        if request.form.get("confirmed") != "yes":
            result, _ = batches.preview(**options)
            db.session.rollback()
            return render_template("allocation/confirm_release.html", form=form, result=result)
        result = batches.release(**options)
    except AllocationError as exc:
        return _refused(exc, ".batches_page")
    db.session.commit()
    flash(result.summary(), "success")
    return redirect(url_for(".batches_page"))
