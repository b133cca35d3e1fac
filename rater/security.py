"""Security headers, session lifetime and login rate limits."""

from flask import Flask


def register(app: Flask) -> None:
    """Install the security measures on the app."""
