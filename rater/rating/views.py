"""The rater's pages (queue, rating page, audio, autosave, submit) and the coordinator's
homework and flagged-assignment pages.

Access is decided per assignment by ``Assignment.can_be_rated_by``: anyone else (another rater,
a held or flagged assignment) gets the same 404 as a missing one, so the answer reveals nothing.
Coordinators may view every rating read-only, reopen submitted ones and manage homework.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from rater.auth.decorators import coordinator_required, rater_required, session_user_id
from rater.auth.forms import EmptyForm
from rater.auth.sessions import session_generation
from rater.extensions import db
from rater.formatting import plural
from rater.instruments import LogKind
from rater.rating import homework as homework_service
from rater.rating import service
from rater.rating.autosave import LOGIN_EXPIRED_MESSAGE, AutosaveRefused, apply_autosave
from rater.rating.forms import (
    CANNOT_RATE_LABELS,
    AssignedHomeworkForm,
    CannotRateForm,
    ReopenForm,
    instrument_blocks,
)
from rater.rating.models import Assignment, HomeworkEntry, Rating
from rater.rating.state import page_answers, page_state
from rater.states import RatingStatus
from rater.study.audio_stream import audio_file, stream_audio
from rater.study.models import Patient, TherapySession

bp = Blueprint("rating", __name__)


def _assignment_or_404(assignment_id: int, *, rate: bool = False) -> Assignment:
    """The assignment if the current user may see it (or rate it); 404 otherwise."""
    assignment = service.get_assignment(assignment_id)
    if assignment is None:
        abort(404)
    allowed = (
        assignment.can_be_rated_by(current_user)
        if rate
        else assignment.can_be_viewed_by(current_user)
    )
    if not allowed:
        abort(404)
    return assignment


def _csrf_ok() -> bool:
    """A bare POST button's form (only the CSRF token) was sent correctly."""
    return EmptyForm().validate_on_submit()


# --- the queue ----------------------------------------------------------------------------


@bp.route("/queue")
@rater_required
def queue():
    queue = service.queue_for(current_user)
    waiting = service.waiting_reason(current_user, queue)
    return render_template("rating/queue.html", queue=queue, waiting=waiting)


@bp.route("/assignments/<int:assignment_id>/start", methods=["POST"])
@rater_required
def start(assignment_id: int):
    assignment = _assignment_or_404(assignment_id, rate=True)
    if assignment.rating is None:
        service.start_rating(assignment)
        db.session.commit()
    return redirect(url_for("rating.rate", assignment_id=assignment.id))


# --- the rating page ----------------------------------------------------------------------


@bp.route("/assignments/<int:assignment_id>/rate")
@login_required
def rate(assignment_id: int):
    assignment = _assignment_or_404(assignment_id)
    if assignment.rating is None:
        return render_template("rating/start.html", assignment=assignment)
    rating = service.load_rating(assignment.rating.id)
    instruments = service.pinned_instruments(rating)
    assigned, reported = service.homework_context(rating)
    return render_template(
        "rating/rate.html",
        assignment=assignment,
        rating=rating,
        blocks=instrument_blocks(instruments),
        answers=page_answers(rating, instruments),
        assigned_homework=assigned,
        state=page_state(rating, instruments, reported),
        editable=_editable(assignment, rating),
        cannot_rate_form=CannotRateForm(),
        reopen_form=ReopenForm(),
        cannot_rate_labels=CANNOT_RATE_LABELS,
    )


def _editable(assignment: Assignment, rating: Rating) -> bool:
    return (
        assignment.rater_id == current_user.id and not rating.is_locked and not rating.cannot_rate
    )


@bp.route("/assignments/<int:assignment_id>/audio")
@login_required
def audio(assignment_id: int):
    assignment = _assignment_or_404(assignment_id)
    return stream_audio(audio_file(assignment.session.audio_path))


@bp.route("/assignments/<int:assignment_id>/autosave", methods=["POST"])
def autosave(assignment_id: int):
    """Apply one batch of the rating page's changes (protocol: rater.rating.autosave).

    The user is not loaded here: the save's own UPDATE checks that the session's user is
    active and the assignment's rater, and that the session was not ended. The save runs on a
    connection of its own, without the ORM session (the request the app serves most often).
    """
    user_id = session_user_id()
    if user_id is None:
        return jsonify(error=LOGIN_EXPIRED_MESSAGE, status=401), 401
    payload = request.get_json(silent=True)
    try:
        with db.engine.begin() as connection:  # commits, or rolls back on any exception
            result = apply_autosave(
                connection, assignment_id, user_id, payload, session_generation=session_generation()
            )
    except AutosaveRefused as refused:
        return jsonify(refused.body()), refused.status
    return jsonify(result)


@bp.route("/assignments/<int:assignment_id>/submit", methods=["POST"])
@rater_required
def submit(assignment_id: int):
    assignment = _assignment_or_404(assignment_id, rate=True)
    if assignment.rating is None:
        abort(409)
    wants_json = request.is_json or request.accept_mimetypes.best == "application/json"
    try:
        service.submit(assignment.rating)
    except service.MissingItems as exc:
        db.session.rollback()
        missing = [{"item": code, "label": label} for code, label in exc.items]
        if wants_json:
            return jsonify(error=str(exc), status=422, missing=missing), 422
        flash(str(exc), "error")
        return redirect(url_for("rating.rate", assignment_id=assignment.id))
    except service.RatingStateError as exc:
        db.session.rollback()
        if wants_json:
            return jsonify(error=str(exc), status=423), 423
        flash(str(exc), "error")
        return redirect(url_for("rating.rate", assignment_id=assignment.id))
    if not wants_json and request.form.get("next"):
        return _submitted_go_next(assignment)
    db.session.commit()
    if wants_json:
        return jsonify(ok=True, version=assignment.rating.version, status=RatingStatus.SUBMITTED)
    flash("Rating submitted. Thank you!", "success")
    return redirect(url_for("rating.rate", assignment_id=assignment.id))


def _submitted_go_next(submitted: Assignment):
    """After "Submit & next session": the next session of the queue, started, or the queue."""
    following = service.start_next(current_user)
    db.session.commit()
    code = submitted.session.code
    if following is None:
        flash(f"Rating of {code} submitted. Your queue is done — thank you!", "success")
        return redirect(url_for("rating.queue"))
    flash(f"Rating of {code} submitted. Now: session {following.session.code}.", "success")
    return redirect(url_for("rating.rate", assignment_id=following.id))


@bp.route("/assignments/<int:assignment_id>/cannot-rate", methods=["POST"])
@rater_required
def cannot_rate(assignment_id: int):
    assignment = _assignment_or_404(assignment_id, rate=True)
    form = CannotRateForm()
    rating = assignment.rating
    if rating is None or not form.validate_on_submit():
        flash("Choose a category and give a reason.", "error")
        return redirect(url_for("rating.rate", assignment_id=assignment.id))
    category, reason = form.category.data, form.reason.data.strip()
    message = f"Session {assignment.session.code} marked as 'cannot be rated'."
    return _act(
        lambda: service.mark_cannot_rate(rating, category, reason),
        url_for("rating.rate", assignment_id=assignment.id),
        message,
        done=url_for("rating.queue"),
    )


def _act(action: Callable[[], None], back: str, message: str, done: str | None = None):
    """Run a state change: commit and flash ``message``, or roll back and flash why not."""
    try:
        action()
    except service.RatingStateError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    db.session.commit()
    flash(message, "success")
    return redirect(done or back)


# --- coordinator actions ------------------------------------------------------------------


@bp.route("/assignments/<int:assignment_id>/reopen", methods=["POST"])
@coordinator_required
def reopen(assignment_id: int):
    assignment = _assignment_or_404(assignment_id)
    form = ReopenForm()
    rating = assignment.rating
    if rating is None or not form.validate_on_submit():
        flash("Give a reason for reopening.", "error")
        return redirect(url_for("rating.rate", assignment_id=assignment.id))
    back = url_for("rating.rate", assignment_id=assignment.id)
    reason = form.reason.data.strip()
    return _act(lambda: service.reopen(rating, reason), back, "Rating reopened.")


@bp.route("/assignments/<int:assignment_id>/unflag", methods=["POST"])
@coordinator_required
def unflag(assignment_id: int):
    assignment = _assignment_or_404(assignment_id)
    if assignment.rating is None or not _csrf_ok():
        abort(400)
    message = f"{assignment.session.code} is back in {assignment.rater.username}'s queue."
    action = lambda: service.return_to_queue(assignment.rating)  # noqa: E731
    return _act(action, url_for("rating.flagged"), message)


@bp.route("/flagged")
@coordinator_required
def flagged():
    return render_template(
        "rating/flagged.html",
        assignments=service.flagged_assignments(),
        labels=CANNOT_RATE_LABELS,
    )


@bp.route("/sessions/<int:session_id>/audio")
@coordinator_required
def session_audio(session_id: int):
    session = db.get_or_404(TherapySession, session_id)
    return stream_audio(audio_file(session.audio_path))


# --- homework assigned for the next session (coordinators) --------------------------------


@bp.route("/homework")
@coordinator_required
def homework_index():
    patient = request.args.get("patient") or None
    return render_template(
        "rating/homework_index.html",
        sessions=homework_service.sessions_with_counts(patient),
        patients=homework_service.patient_codes(),
        patient=patient,
    )


@bp.route("/homework/sessions/<int:session_id>", methods=["GET", "POST"])
@coordinator_required
def homework_session(session_id: int):
    session = db.get_or_404(TherapySession, session_id)
    types = homework_service.homework_types()
    form = AssignedHomeworkForm().set_types(types)
    if form.validate_on_submit():
        homework_service.add_assigned(
            session, form.homework_type.data, form.description.data.strip(), current_user.id
        )
        db.session.commit()
        flash("Homework added.", "success")
        return redirect(url_for("rating.homework_session", session_id=session.id))
    entries = homework_service.assigned_entries(session)
    edit_forms = {
        e.id: AssignedHomeworkForm(
            formdata=None, homework_type=e.homework_type, description=e.description
        ).set_types(types)
        for e in entries
    }
    status = 400 if form.is_submitted() else 200
    return render_template(
        "rating/homework_session.html",
        session=session,
        entries=entries,
        form=form,
        edit_forms=edit_forms,
    ), status


def _assigned_entry_or_404(entry_id: int) -> HomeworkEntry:
    entry = db.session.get(HomeworkEntry, entry_id)
    if entry is None or entry.kind != LogKind.ASSIGNED_NEXT:
        abort(404)
    return entry


@bp.route("/homework/entries/<int:entry_id>/edit", methods=["POST"])
@coordinator_required
def homework_edit(entry_id: int):
    entry = _assigned_entry_or_404(entry_id)
    form = AssignedHomeworkForm().set_types(homework_service.homework_types())
    if not form.validate_on_submit():
        flash("Choose a type and write a description.", "error")
    else:
        homework_service.update_assigned(
            entry, form.homework_type.data, form.description.data.strip()
        )
        db.session.commit()
        flash("Homework updated.", "success")
    return redirect(url_for("rating.homework_session", session_id=entry.session_id))


@bp.route("/homework/entries/<int:entry_id>/delete", methods=["POST"])
@coordinator_required
def homework_delete(entry_id: int):
    entry = _assigned_entry_or_404(entry_id)
    session_id = entry.session_id
    if not _csrf_ok():
        abort(400)
    homework_service.delete_assigned(entry)
    db.session.commit()
    flash("Homework deleted.", "success")
    return redirect(url_for("rating.homework_session", session_id=session_id))


@bp.route("/homework/patients/<int:patient_id>", methods=["GET", "POST"])
@coordinator_required
def homework_grid(patient_id: int):
    """Every session of one patient as rows: edit, delete and add entries, saved together
    (all or nothing: a row with a problem keeps the whole grid from being saved)."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        abort(404)
    if request.method == "POST" and not _csrf_ok():
        abort(400)
    form = request.form if request.method == "POST" else None
    rows = homework_service.grid_rows(patient, form)
    problems = sum(1 for row in rows if row.problem)
    if form is not None and not problems:
        result = homework_service.save_grid(rows, current_user.id)
        db.session.commit()
        flash(
            f"Saved: {result.added} added, {result.changed} changed, {result.deleted} deleted.",
            "success",
        )
        return redirect(url_for("rating.homework_grid", patient_id=patient.id))
    if problems:
        flash(f"Nothing was saved: {plural(problems, 'row')} to correct (marked).", "error")
    return render_template(
        "rating/homework_grid.html",
        patient=patient,
        rows=rows,
        types=homework_service.homework_types(),
    ), (400 if problems else 200)
