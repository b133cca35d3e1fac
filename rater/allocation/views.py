"""Allocation: design preview, calibration, progress, sessions."""

from flask import Blueprint

bp = Blueprint("allocation", __name__, url_prefix="/allocation")
