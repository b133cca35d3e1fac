"""The login limits hold when many wrong passwords arrive at once (a real gunicorn server).

Counting the failures and checking the password used to be separate steps, so that every
attempt that arrived before the first failure was recorded passed the check: 8-19 of 24
simultaneous guesses were checked against a limit of 5. Now an attempt is counted, under a
lock of the account and the address, before its password is checked.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from rater.auth.models import User
from rater.extensions import db
from tests.deploy.test_serve import running_server

ATTEMPTS = 24
LIMIT = 5  # RATER_LOGIN_MAX_ACCOUNT_FAILURES (the default)
ADDRESS_LIMIT = 8  # RATER_LOGIN_MAX_ADDRESS_FAILURES: lower than its default of 20, so
# that fewer (slow) password checks are needed to show that it holds too


@pytest.fixture(scope="module")
def server(_schema: str) -> Iterator[str]:
    """One server for the module (its tests empty the tables between them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RATER_LOGIN_MAX_ACCOUNT_FAILURES", str(LIMIT))
        patch.setenv("RATER_LOGIN_MAX_ADDRESS_FAILURES", str(ADDRESS_LIMIT))
        with running_server(_schema, workers=2, threads=8) as base:
            yield base


CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _simultaneous_guesses(base: str, usernames: list[str]) -> Counter:
    """One guess per username, each from its own browser session, all POSTs released together
    (every one from 127.0.0.1)."""
    attempts = len(usernames)
    clients = [requests.Session() for _ in range(attempts)]
    tokens = [CSRF_FIELD.search(c.get(f"{base}/login", timeout=30).text)[1] for c in clients]
    start = threading.Barrier(attempts)
    statuses: list[int] = []

    def guess(client: requests.Session, token: str, username: str) -> None:
        data = {"username": username, "password": "not-the-password", "csrf_token": token}
        start.wait(timeout=30)
        statuses.append(client.post(f"{base}/login", data=data, timeout=60).status_code)

    guesses = zip(clients, tokens, usernames, strict=True)
    threads = [threading.Thread(target=guess, args=args) for args in guesses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return Counter(statuses)


def test_simultaneous_wrong_passwords_are_checked_at_most_limit_times(app, server, factory):
    factory.user("r1")
    counts = _simultaneous_guesses(server, ["r1"] * ATTEMPTS)
    print(f"{ATTEMPTS} simultaneous wrong passwords for one account: {dict(counts)}")
    assert counts == {401: LIMIT, 429: ATTEMPTS - LIMIT}


def test_simultaneous_guesses_from_one_address_are_checked_at_most_its_limit(app, server, factory):
    """Guesses at many accounts (existing ones: each check takes as long as a real one)."""
    first = factory.user("r00")
    names = [f"r{i:02d}" for i in range(ATTEMPTS)]
    db.session.add_all(
        User(username=name, role="rater", password_hash=first.password_hash) for name in names[1:]
    )
    db.session.commit()
    counts = _simultaneous_guesses(server, names)
    print(f"{ATTEMPTS} simultaneous guesses at different names from one address: {dict(counts)}")
    assert counts == {401: ADDRESS_LIMIT, 429: ATTEMPTS - ADDRESS_LIMIT}
