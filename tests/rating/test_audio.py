"""Audio streaming: Range requests, conditional requests, and no way out of the audio folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rater.extensions import db
from rater.rating.models import Assignment
from tests.rating.helpers import build_study, login_as

AUDIO = Path(__file__).resolve().parents[2] / "audio" / "demo-session-a.ogg"


@pytest.fixture
def audio_url(auth, factory) -> str:
    study = build_study(factory)
    login_as(auth, "rater")
    return f"/assignments/{study.id}/audio"


def test_whole_file(client, audio_url):
    response = client.get(audio_url)
    data = AUDIO.read_bytes()
    assert response.status_code == 200
    assert response.data == data
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "audio/ogg"
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-500", -500, None)],
)
def test_ranges(client, audio_url, header, start, end):
    data = AUDIO.read_bytes()
    size = len(data)
    first = start if start >= 0 else size + start
    last = size - 1 if end is None else end
    response = client.get(audio_url, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.data == data[first : last + 1]


def test_range_far_into_the_file_reads_only_those_bytes(client, audio_url):
    size = AUDIO.stat().st_size
    response = client.get(audio_url, headers={"Range": f"bytes={size - 10}-{size + 100}"})
    assert response.status_code == 206
    assert len(response.data) == 10
    assert response.headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"


def test_unsatisfiable_range(client, audio_url):
    size = AUDIO.stat().st_size
    response = client.get(audio_url, headers={"Range": f"bytes={size + 10}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert response.data == b""


@pytest.mark.parametrize(
    "header",
    ["bytes=abc", "bytes=5-1", "bytes=", "bytes=-", "bytes=1-2-3", "bytes=0x10-", "bytes=²-5",
     "bytes=1.5-2", "bytes=0-1;x", "items=0-5", "0-5", "bytes", "bytes 0-5", "=0-5",
     "bytes=0-1,5-9", "bytes=-5,0-1", "bytes=0-1,999999999-"],
)  # fmt: skip
def test_a_range_that_cannot_be_used_is_ignored(client, audio_url, header):
    """RFC 9110 §14.2: invalid syntax or an unknown unit: the header is ignored (200, whole file);
    several ranges (no multipart answers here) may be ignored the same way."""
    response = client.get(audio_url, headers={"Range": header})
    assert response.status_code == 200
    assert response.data == AUDIO.read_bytes()
    assert "Content-Range" not in response.headers


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("Bytes=0-9", 0, 9), ("bytes= 0-9 ", 0, 9), ("bytes=0-9,", 0, 9), (" bytes=5-5", 5, 5)],
)
def test_valid_ranges_with_optional_whitespace_and_case(client, audio_url, header, first, last):
    response = client.get(audio_url, headers={"Range": header})
    assert response.status_code == 206
    assert response.data == AUDIO.read_bytes()[first : last + 1]


@pytest.mark.parametrize("spec", ["{size}-", "{size}-{beyond}", "-0", "{size}-,{beyond}-"])
def test_valid_but_unsatisfiable_ranges_get_416(client, audio_url, spec):
    size = AUDIO.stat().st_size
    header = "bytes=" + spec.format(size=size, beyond=size + 100)
    response = client.get(audio_url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.usefixtures("factory")
def test_every_audio_answer_is_no_store(client, auth, audio_url):
    """Recordings are clinical data: no browser or proxy may keep them, whatever the answer."""
    size = AUDIO.stat().st_size
    etag = client.get(audio_url).headers["ETag"]
    requests = [
        ("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-99"}), ("GET", {"Range": "bytes=-5"}),
        ("GET", {"If-None-Match": etag}), ("GET", {"Range": f"bytes={size + 1}-"}),
        ("GET", {"Range": "bytes=abc"}),
    ]  # fmt: skip
    statuses = []
    for method, headers in requests:
        response = client.open(audio_url, method=method, headers=headers)
        statuses.append(response.status_code)
        assert response.headers["Cache-Control"] == "no-store", (method, headers)
    assert statuses == [200, 200, 206, 206, 304, 416, 200]
    auth.logout()
    login_as(auth, "coordinator")
    session_id = db.session.scalars(db.select(Assignment.session_id)).first()
    response = client.get(f"/sessions/{session_id}/audio", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.headers["Cache-Control"] == "no-store"


def test_if_none_match_gives_304(client, audio_url):
    etag = client.get(audio_url).headers["ETag"]
    response = client.get(audio_url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert client.get(audio_url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since_gives_304(client, audio_url):
    modified = client.get(audio_url).headers["Last-Modified"]
    assert client.get(audio_url, headers={"If-Modified-Since": modified}).status_code == 304


def test_if_range(client, audio_url):
    etag = client.get(audio_url).headers["ETag"]
    same = client.get(audio_url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206 and len(same.data) == 10
    changed = client.get(audio_url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert changed.status_code == 200  # the file changed: the whole file, not a stale piece
    assert len(changed.data) == AUDIO.stat().st_size


@pytest.mark.parametrize(
    "path",
    [
        "../pyproject.toml",
        "../../etc/passwd",
        "..%2Fpyproject.toml",
        "%2e%2e/pyproject.toml",
        "/etc/passwd",
        str(AUDIO),  # absolute, even inside the folder
        "sub/../../pyproject.toml",
        "..\\pyproject.toml",
        "",
    ],
)
def test_path_traversal_refused(client, auth, factory, path):
    study = build_study(factory)
    study.assignment.session.audio_path = path
    db.session.commit()
    login_as(auth, "rater")
    response = client.get(f"/assignments/{study.id}/audio")
    assert response.status_code == 404
    assert b"root:" not in response.data and b"[project]" not in response.data


@pytest.mark.parametrize(
    "url", ["/assignments/1/audio/../../../etc/passwd", "/audio/..%2f..%2fetc"]
)
def test_no_url_reaches_files_outside(client, auth, factory, url):
    build_study(factory)
    login_as(auth, "rater")
    response = client.get(url)
    assert response.status_code == 404
    assert b"root:" not in response.data


def test_coordinator_session_audio_streams_ranges(client, auth, factory):
    study = build_study(factory)
    login_as(auth, "coordinator")
    url = f"/sessions/{study.assignment.session_id}/audio"
    response = client.get(url, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206 and len(response.data) == 100


@pytest.mark.parametrize(
    "path", ["demo-session-a.ogg\x00.txt", "..\\x", "/", ".", "missing.ogg", None]
)
def test_audio_file_refuses_odd_paths(path):
    # NUL bytes cannot even be stored by PostgreSQL; the lookup refuses them all the same.
    from werkzeug.exceptions import NotFound

    from rater.study.audio_stream import audio_file

    with pytest.raises(NotFound):
        audio_file(path, AUDIO.parent)
