"""No audio path escapes the audio folder, neither in the resolver nor through the endpoints."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rater.extensions import db
from rater.study.audio import AudioPathError, resolve_audio_path

AUDIO_DIR = Path(__file__).resolve().parents[2] / "audio"
SEGMENTS = st.sampled_from(["..", ".", "", "audio", "etc", "passwd", "demo-session-a.ogg", "~",
                            "%2e%2e", "..\\..", "\x00", "/", "C:"])  # fmt: skip


@given(st.lists(SEGMENTS | st.text(max_size=6), min_size=1, max_size=6), st.booleans())
def test_resolved_paths_stay_inside_the_audio_folder(parts, absolute):
    relative = ("/" if absolute else "") + "/".join(parts)
    try:
        resolved = resolve_audio_path(AUDIO_DIR, relative)
    except AudioPathError:
        return
    root = AUDIO_DIR.resolve()
    assert resolved == root or root in resolved.parents


def test_endpoints_do_not_serve_files_outside_the_folder(app, table, world, client):
    secret = Path(app.config["RATER_AUDIO_DIR"]).resolve().parent / "pyproject.toml"
    assert secret.exists()
    for evil in ("../pyproject.toml", str(secret), "..\\pyproject.toml", "a/../../pyproject.toml"):
        world.session_a.audio_path = evil
        db.session.commit()
        for user, url in (
            (world.rater_a, f"/assignments/{world.assignment_a.id}/audio"),
            (world.coordinator, f"/sessions/{world.session_a.id}/audio"),
        ):
            table.log_in_as(client, user)
            response = client.get(url)
            assert response.status_code == 404, (evil, url)
            assert b"[project]" not in response.data
