"""Arbitrary Range headers to the audio endpoints: 200, 206 or 416, never a 500; a header that
is not a byte range in valid syntax is ignored (200, RFC 9110), and every answer is no-store."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NUMBER = st.one_of(st.integers(0, 200_000).map(str), st.just(""), st.sampled_from(
    ["-1", "99999999999999999999999", "abc", " 5", "0x10", "1.5"]))  # fmt: skip
RANGE = st.one_of(
    st.builds(lambda u, spans: f"{u}={','.join(spans)}",
              st.sampled_from(["bytes", "Bytes", "items", ""]),
              st.lists(st.builds(lambda a, b: f"{a}-{b}", NUMBER, NUMBER), max_size=4)),
    # Any text a client can put on one header line (HTTP has no way to send CR or LF in it).
    st.text(st.characters(blacklist_characters="\r\n"), max_size=30),
)  # fmt: skip
# Only the unit "bytes", digits, dashes, commas and blanks can make a byte range (RFC 9110
# §14.1.2); a header with anything else is no range request and gets the whole file.
RANGE_ALPHABET = re.compile(r"bytes=[0-9,\- \t]*", re.IGNORECASE | re.ASCII)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    range_header=RANGE, if_range=st.sampled_from([None, '"nope"', "Wed, 21 Oct 2015 07:28:00 GMT"])
)
@pytest.mark.usefixtures("app")
def test_range_headers(table, world, client, range_header, if_range):
    headers = {"Range": range_header} | ({"If-Range": if_range} if if_range else {})
    for user, url in (
        (world.rater_a, f"/assignments/{world.assignment_a.id}/audio"),
        (world.coordinator, f"/sessions/{world.session_a.id}/audio"),
    ):
        table.log_in_as(client, user)
        with client.get(url, headers=headers) as response:  # closes the file it streams
            assert response.status_code in (200, 206, 416), (range_header, response.status_code)
            assert response.headers["Cache-Control"] == "no-store"
            if not RANGE_ALPHABET.fullmatch(range_header.strip(" \t")):
                assert response.status_code == 200, (range_header, response.status_code)
            if response.status_code == 206:
                assert response.headers["Content-Range"].startswith("bytes ")
                assert len(response.data) == int(response.headers["Content-Length"])
