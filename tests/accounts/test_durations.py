"""Link durations read as words ('3 days', '12 hours'), never '72.00 hours'."""

from __future__ import annotations

import math

import pytest

from rater.formatting import format_hours


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (72, "3 days"),
        (72.0, "3 days"),
        (24, "1 day"),
        (12, "12 hours"),
        (1, "1 hour"),
        (36.5, "36.5 hours"),
        (1.25, "1.25 hours"),
        (0.5, "30 minutes"),
        (None, "–"),
        (math.nan, "–"),
    ],
)
def test_format_hours(hours, expected):
    assert format_hours(hours) == expected


@pytest.mark.parametrize(("setting", "shown"), [(72, "3 days"), (12.0, "12 hours")])
def test_users_page_writes_the_link_duration_in_words(app, client, factory, auth, setting, shown):
    app.config["RATER_SET_PASSWORD_HOURS"] = setting
    factory.user("coord", "coordinator")
    auth.login("coord")
    page = client.get("/users/").get_data(as_text=True)
    assert f"(valid {shown})" in page
    assert ".00 hours" not in page
