"""A bad instrument file is refused with one line naming the file, the item and the field: by
``rater init-db``, ``rater serve`` and every page (no 500)."""

from __future__ import annotations

from pathlib import Path

import pytest

BAD = """code = "BAD"
name = "Bad scale"
scale = { min = 0, max = 6 }
[[items]]
code = "BAD_1"
label = "One"
anchors = { 0 = "none", 7 = "beyond" }
"""
PROBLEM = "bad.toml: item BAD_1: "


@pytest.fixture
def bad_folder(instruments_dir: Path) -> Path:
    (instruments_dir / "bad.toml").write_text(BAD)
    return instruments_dir


@pytest.mark.usefixtures("bad_folder")
def test_init_db_and_serve_name_file_item_and_field(app, runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 1
    said = result.output + getattr(result, "stderr", "")
    assert PROBLEM + "Value error, anchors given for score points outside 0-6: [7]" in said
    assert "Traceback" not in said
    from rater.serve import startup_problems

    problems = [p for p in startup_problems(app) if "instrument" in p]
    assert problems == [f"An instrument file is invalid: {PROBLEM}Value error, anchors given "
                        "for score points outside 0-6: [7]"]  # fmt: skip


def test_pages_answer_with_the_problem_not_500(client, auth, factory, bad_folder):
    factory.user("coord", "coordinator")
    session = factory.session("P01-S01")
    assert auth.login("coord").status_code == 302
    for url in (f"/homework/sessions/{session.id}",):  # pages that read the folder
        response = client.get(url)
        assert response.status_code == 503, url
        assert PROBLEM in response.get_data(as_text=True)
    (bad_folder / "bad.toml").unlink()
    assert client.get(f"/homework/sessions/{session.id}").status_code == 200
