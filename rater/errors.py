"""Error pages for 400/403/404/405/413/500; never any exception text."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from rater.extensions import db

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


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def render_error(code: int, message: str | None = None):
    message = message or MESSAGES.get(code, "Error")
    if _wants_json():
        return jsonify(error=message, status=code), code
    return render_template("errors/error.html", code=code, message=message), code


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(400, "The form expired or was not sent from this site. Reload it.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        if code >= 500:
            db.session.rollback()
        return render_error(code)

    @app.errorhandler(Exception)
    def unhandled(error: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error")
        return render_error(500)
