"""Rating tests: a cheap password hash, so that the many logins stay fast.

The production hash (scrypt) costs a noticeable fraction of a second per user and login; the
rating tests create several users per test and test nothing about passwords.
"""

from __future__ import annotations

import pytest
from werkzeug.security import generate_password_hash


@pytest.fixture(autouse=True)
def _fast_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "rater.auth.models.generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )
