"""Reliability dashboard, disagreements and consensus."""

from flask import Blueprint

bp = Blueprint("reliability", __name__, url_prefix="/reliability")
