"""Commands of the reliability package."""

from flask import Flask


def register(app: Flask) -> None:
    """Add this package's commands to the `rater` group."""
