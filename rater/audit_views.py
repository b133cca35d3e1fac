"""The coordinator's audit log browser."""

from flask import Blueprint

bp = Blueprint("audit_views", __name__, url_prefix="/audit")
