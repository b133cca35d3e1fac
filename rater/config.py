"""Configuration classes, read from the environment.

Every setting can be overridden by an environment variable of the same name; the defaults give a
working demo study on an embedded SQLite file under ``instance/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-insecure-change-me"
# `rater serve` refuses a shorter SECRET_KEY: whoever guesses the key can sign sessions of
# any user. 32 characters is 128 bits or more of a random hex or base64 key.
MIN_SECRET_KEY_LENGTH = 32
# werkzeug's scrypt: a current memory-hard algorithm (about 0.1 s per hash here, on purpose).
DEFAULT_PASSWORD_HASH = "scrypt"


def _default_database_url() -> str:
    instance = PROJECT_ROOT / "instance"
    return f"sqlite:///{instance / 'rater.sqlite'}"


class Config:
    """Settings shared by every environment; values come from the environment at instantiation."""

    def __init__(self) -> None:
        env = os.environ
        self.SECRET_KEY = env.get("SECRET_KEY", DEFAULT_SECRET_KEY)
        self.SQLALCHEMY_DATABASE_URI = env.get("DATABASE_URL", _default_database_url())
        self.RATER_AUDIO_DIR = env.get("RATER_AUDIO_DIR", str(PROJECT_ROOT / "audio"))
        self.RATER_INSTRUMENTS_DIR = env.get(
            "RATER_INSTRUMENTS_DIR", str(PROJECT_ROOT / "instruments")
        )
        self.RATER_PHASE_BOUNDARY = int(env.get("RATER_PHASE_BOUNDARY", "5"))
        self.RATER_DEMO = env.get("RATER_DEMO", "0") == "1"
        self.SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
        self._security_settings(env)
        self.WTF_CSRF_TIME_LIMIT = None
        self.MAX_CONTENT_LENGTH = 32 * 1024 * 1024

    def _security_settings(self, env: Mapping[str, str]) -> None:
        """Cookies, session lifetime, proxy trust and login limits (see docs/security.md)."""
        https = env.get("RATER_HTTPS", "0") == "1"
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # The idle clock (rater.security) rewrites the session often enough; re-signing the
        # cookie on every response cost about 5 % of a worker's time under autosave load.
        self.SESSION_REFRESH_EACH_REQUEST = False
        # Secure cookies only travel over HTTPS: switch on when served behind TLS.
        self.SESSION_COOKIE_SECURE = https
        self.REMEMBER_COOKIE_SECURE = https
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.PREFERRED_URL_SCHEME = "https" if https else "http"
        # A session ends after this many minutes without a request ...
        self.RATER_SESSION_IDLE_MINUTES = int(env.get("RATER_SESSION_IDLE_MINUTES", "60"))
        # ... and at the latest this many hours after login (counted from the login time kept
        # in the session; the cookie's own lifetime is the same).
        self.PERMANENT_SESSION_LIFETIME = timedelta(
            hours=float(env.get("RATER_SESSION_MAX_HOURS", "12"))
        )
        # Number of reverse proxies in front of the app whose X-Forwarded-* headers we trust.
        self.RATER_PROXY_COUNT = int(env.get("RATER_PROXY_COUNT", "0"))
        self.RATER_LOGIN_WINDOW_MINUTES = int(env.get("RATER_LOGIN_WINDOW_MINUTES", "15"))
        self.RATER_LOGIN_MAX_ACCOUNT_FAILURES = int(
            env.get("RATER_LOGIN_MAX_ACCOUNT_FAILURES", "5")
        )
        self.RATER_LOGIN_MAX_ADDRESS_FAILURES = int(
            env.get("RATER_LOGIN_MAX_ADDRESS_FAILURES", "20")
        )
        # How new passwords are hashed (werkzeug method). Deliberately not read from the
        # environment: only the test suite, whose thousands of throwaway users test nothing
        # about the hash, uses a cheaper one (TestConfig).
        self.RATER_PASSWORD_HASH = DEFAULT_PASSWORD_HASH
        # A set-password link (new account, password reset) works once, for this many hours.
        self.RATER_SET_PASSWORD_HOURS = float(env.get("RATER_SET_PASSWORD_HOURS", "72"))


class TestConfig(Config):
    """Settings for the test suite: a throwaway database chosen by the fixtures."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.TESTING = True
        self.SECRET_KEY = "test-secret-" + "x" * MIN_SECRET_KEY_LENGTH
        self.WTF_CSRF_ENABLED = False  # the ``csrf_app`` fixture turns it back on
        # One PBKDF2 round instead of scrypt: ~0.1 s less for every user and login of the suite.
        # tests/auth checks that production keeps scrypt and that old hashes still verify.
        self.RATER_PASSWORD_HASH = "pbkdf2:sha256:1"
        self.SQLALCHEMY_DATABASE_URI = database_url
