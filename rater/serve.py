"""``rater serve`` and ``rater backup``."""

from flask import Flask


def register(app: Flask) -> None:
    """Add the deployment commands to the ``rater`` group."""
