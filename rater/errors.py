"""Error pages for 400/403/404/405/413/500/503; never any exception text.

A database that cannot take the request (unreachable, restarting, read-only, full) answers 503
with a plain message and ``Retry-After``, never 200: the rating page keeps the change queued and
retries, so nothing typed is lost while the database is away (see docs/load.md).
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from rater.extensions import db
from rater.instruments import InstrumentError

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "This page does not exist.",
    405: "This action is not allowed here.",
    409: "This changed in the meantime.",
    413: "The upload is too large.",
    416: "The requested range cannot be served.",
    429: "Too many attempts. Please wait and try again.",
    500: "Something went wrong on our side. Your saved work is safe; please try again.",
    503: "The database is not available right now. Please try again in a moment.",
}

NOT_SAVED = " Your last change was not saved; the rating page keeps it and retries."
READ_ONLY_MESSAGE = "The database is read-only at the moment (maintenance)." + NOT_SAVED
FULL_MESSAGE = "The database is out of space. Please tell the study coordinator." + NOT_SAVED
UNAVAILABLE_MESSAGE = "The database is not reachable right now." + NOT_SAVED
RETRY_AFTER_SECONDS = 5

# SQLSTATE classes/codes of PostgreSQL that mean "the database cannot take this now".
_UNAVAILABLE_STATES = ("08", "57P")  # connection exceptions; admin shutdown, cannot connect now
READ_ONLY_STATES = ("25006",)  # read_only_sql_transaction
_FULL_STATES = ("53",)  # insufficient resources: disk full, out of memory, too many connections


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def render_error(code: int, message: str | None = None):
    message = message or MESSAGES.get(code, "Error")
    if _wants_json():
        return jsonify(error=message, status=code), code
    return render_template("errors/error.html", code=code, message=message), code


def database_unavailable_message(error: BaseException) -> str | None:
    """A message for a database error that means "not available now", else None.

    Lost connections and refused connections (OperationalError), SQLite's "readonly database"
    and "database or disk is full", and PostgreSQL's read-only transactions, full disks and
    shutdowns. Integrity errors and programming errors are bugs: they stay 500.
    """
    if not isinstance(error, DBAPIError | DisconnectionError):
        return None
    original = getattr(error, "orig", None)
    state = str(getattr(original, "sqlstate", "") or "")
    text = str(original or error).lower()
    if state.startswith(READ_ONLY_STATES) or "readonly database" in text:
        return READ_ONLY_MESSAGE
    if state.startswith(_FULL_STATES) or "database or disk is full" in text:
        return FULL_MESSAGE
    if state.startswith(_UNAVAILABLE_STATES) or isinstance(
        error, OperationalError | InterfaceError | DisconnectionError
    ):
        return UNAVAILABLE_MESSAGE
    if getattr(error, "connection_invalidated", False):
        return UNAVAILABLE_MESSAGE
    return None


@event.listens_for(Engine, "handle_error")
def _read_only_connection_is_stale(context: ExceptionContext) -> None:
    """Drop connections opened while PostgreSQL was read-only once one of them fails a write.

    ``default_transaction_read_only`` is fixed when a connection opens, so without this the
    pool would keep refusing writes after the database has become writable again; marking the
    error a disconnect makes the pool replace every connection it holds.
    """
    state = getattr(context.original_exception, "sqlstate", None)
    if state in READ_ONLY_STATES:
        context.is_disconnect = True


def _rollback_quietly() -> None:
    """Roll back; with the database gone the rollback itself may fail, which changes nothing."""
    try:
        db.session.rollback()
    except Exception:  # the connection is already invalid; the pool discards it
        db.session.remove()


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError):
        return render_error(400, "The form expired or was not sent from this site. Reload it.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        if code >= 500:
            db.session.rollback()
        return render_error(code)

    @app.errorhandler(InstrumentError)
    def bad_instrument(error: InstrumentError):
        """A bad file in the instruments folder: say which (the folder is read per request)."""
        _rollback_quietly()
        app.logger.error("Instrument file refused: %s", error)
        return render_error(
            503,
            f"An instrument file is invalid: {error}. Ask the coordinator "
            "to fix it (rater init-db shows the same message).",
        )

    @app.errorhandler(Exception)
    def unhandled(error: Exception):
        _rollback_quietly()
        message = database_unavailable_message(error)
        if message is not None:
            app.logger.warning("Database unavailable: %s", type(error).__name__)
            response, code = render_error(503, message)
            return response, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}
        app.logger.exception("Unhandled error")
        return render_error(500)
