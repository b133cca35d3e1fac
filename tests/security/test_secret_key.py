"""``rater serve`` refuses a secret key an attacker could guess (the built-in one, or a short
one); the demo mode may keep the built-in key."""

from __future__ import annotations

import pytest

from rater.config import DEFAULT_SECRET_KEY, MIN_SECRET_KEY_LENGTH
from rater.serve import RaterServer, startup_problems


def _problems(build_app, app_config, key: str, demo: bool = False) -> list[str]:
    app_config.SECRET_KEY = key
    app_config.RATER_DEMO = demo
    app = build_app(app_config)
    with app.app_context():
        return startup_problems(app)


@pytest.mark.parametrize("key", ["", "secret", "x" * (MIN_SECRET_KEY_LENGTH - 1)])
def test_a_short_secret_key_is_refused(build_app, app_config, key):
    problems = _problems(build_app, app_config, key)
    assert len(problems) == 1 and f"at least {MIN_SECRET_KEY_LENGTH} characters" in problems[0]


def test_a_long_secret_key_is_accepted(build_app, app_config):
    assert MIN_SECRET_KEY_LENGTH >= 32
    assert _problems(build_app, app_config, "k" * MIN_SECRET_KEY_LENGTH) == []


def test_the_built_in_key_is_refused_whatever_its_length(build_app, app_config):
    problems = _problems(build_app, app_config, DEFAULT_SECRET_KEY)
    assert len(problems) == 1 and "built-in default" in problems[0]


def test_the_demo_mode_may_use_the_built_in_key(build_app, app_config):
    assert _problems(build_app, app_config, DEFAULT_SECRET_KEY, demo=True) == []


def test_serve_refuses_to_start_with_a_short_key(build_app, app_config, monkeypatch):
    monkeypatch.setattr(RaterServer, "run", lambda _server: pytest.fail("the server started"))
    app_config.SECRET_KEY = "too-short-but-not-the-default"
    result = build_app(app_config).test_cli_runner().invoke(args=["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "refuses to start" in result.output and "SECRET_KEY" in result.output
