"""Round trip long export -> ``ratings import`` -> long export, byte-identical for every kind of
item, over random instrument definitions (ranges, kinds, N/A, reverse keying, prorating)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rater.auth.models import User
from rater.export.service import Options, export_to
from rater.extensions import db
from rater.instruments import NOT_APPLICABLE, Item, ItemKind, parse_instrument
from rater.rating.importer import import_ratings
from rater.study.instrument_store import current_versions
from rater.study.models import TherapySession

RATERS = ("r1", "r2")
SESSIONS = ("P01-S01", "P01-S02")
CATEGORIES = ("alpha", "beta", "gamma-2", "d_4")


@st.composite
def instrument_files(draw) -> str:
    """The TOML text of a random instrument (code RND)."""
    low = draw(st.integers(-3, 3))
    points = draw(st.integers(2, 11))
    lines = [
        'code = "RND"',
        'name = "Random"',
        f"scale = {{ min = {low}, max = {low + points - 1} }}",
    ]
    if draw(st.booleans()):
        lines.append('not_applicable = "Not observed"')
    kinds = draw(st.lists(st.sampled_from(list(ItemKind)), min_size=1, max_size=6))
    numeric = []
    for index, kind in enumerate(kinds):
        code = f"I{index}"
        lines += ["[[items]]", f'code = "{code}"', f'label = "Item {index}"', f'kind = "{kind}"']
        if kind == ItemKind.ORDINAL:
            numeric.append(code)
            if draw(st.booleans()):
                lines.append("reverse = true")
            if draw(st.booleans()):
                lines.append(f'anchors = {{ {low} = "lowest" }}')
        elif kind == ItemKind.COUNT:
            numeric.append(code)
        elif kind == ItemKind.NOMINAL:
            n = draw(st.integers(2, len(CATEGORIES)))
            cats = ", ".join(f'{c} = "Label {c}"' for c in CATEGORIES[:n])
            lines.append(f"categories = {{ {cats} }}")
            if draw(st.booleans()):
                lines.append("multiple = true")
        na = draw(st.sampled_from(["inherit", "false", '"N/A here"']))
        if na != "inherit":
            lines.append(f"not_applicable = {na}")
    if len(numeric) >= 2:
        rule = draw(st.sampled_from(["mean", "sum"]))
        items = ", ".join(f'"{c}"' for c in numeric)
        missing = draw(st.integers(0, len(numeric) - 1))
        lines += ["[[scores]]", 'code = "RND_score"', 'label = "Score"', f'rule = "{rule}"',
                  f"items = [{items}]", f"max_missing = {missing}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _answer(draw, item: Item):
    """A random stored answer of the item (None: not answered)."""
    options = [st.none()]
    if item.allows_not_applicable:
        options.append(st.just(NOT_APPLICABLE))
    if item.kind == ItemKind.ORDINAL:
        options.append(st.sampled_from(item.points))
    elif item.kind == ItemKind.COUNT:
        options.append(st.integers(0, 500))
    elif item.kind == ItemKind.NOMINAL and item.multiple:
        codes = st.lists(st.sampled_from(list(item.categories)), min_size=1, unique=True)
        options.append(codes.map(item.answer))
    elif item.kind == ItemKind.NOMINAL:
        options.append(st.sampled_from(list(item.categories)))
    else:
        text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1)
        options.append(text.map(str.strip).filter(bool))
    return draw(st.one_of(*options))


def _cells(item: Item, answer) -> tuple[str, str, str]:
    """The (score, value, not_applicable) cells of a long file."""
    if answer is NOT_APPLICABLE:
        return "", "", "1"
    if item.is_numeric:
        return str(answer), "", "0"
    return "", answer, "0"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _empty_tables() -> None:
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


def _study(factory) -> None:
    for name in RATERS:
        factory.user(name)
    for number, code in enumerate(SESSIONS, start=1):
        factory.session(code, number=number)


def _long() -> bytes:
    target = io.BytesIO()
    export_to("long", "csv", target, Options())
    return target.getvalue()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.usefixtures("app")
def test_long_import_long_is_byte_identical(factory, instruments_dir: Path, data):
    text = data.draw(instrument_files())
    instrument = parse_instrument(text.encode(), "rnd.toml")
    for old in instruments_dir.glob("*.toml"):
        old.unlink()
    (instruments_dir / "rnd.toml").write_text(text)
    _empty_tables()
    _study(factory)
    current_versions()
    rows, expected = [], {}
    for session in SESSIONS:
        for rater in RATERS:
            for item in instrument.items:
                answer = _answer(data.draw, item)
                if answer is None:
                    continue
                expected[(session, rater, item.code)] = answer
                score, value, na = _cells(item, answer)
                rows.append(f"{session},{rater},RND,{item.code},{score},{_quoted(value)},{na}\n")
    head = "session_id,rater,instrument,item,score,value,not_applicable\n"
    import_ratings((head + "".join(rows)).encode(), "in.csv", allow_incomplete=True)
    db.session.commit()
    first = _long()
    read = pd.read_csv(io.BytesIO(first), dtype=str, keep_default_na=False)
    assert len(read) == len(expected)
    for row in read.itertuples(index=False):
        item = instrument.item(row.item)
        assert _cells(item, expected[(row.session_id, row.rater, row.item)]) == (
            row.score,
            _unneutralised(row.value),
            row.not_applicable,
        )
    _empty_tables()
    _study(factory)
    if expected:
        import_ratings(first, "long.csv", allow_incomplete=True)
        db.session.commit()
    assert _long() == first


def _unneutralised(cell: str) -> str:
    from rater.spreadsheet import unneutralise

    return unneutralise(cell)


def _autosave_value(item: Item, answer):
    """The stored answer as the rating page sends it."""
    return item.protocol_value(answer)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.usefixtures("app")
def test_autosave_long_import_long_is_identical(client, factory, instruments_dir, data):
    """A rating entered through autosave and submitted, exported long, imported into a fresh
    database and exported again, gives the same file; the file holds what was entered."""
    from rater.rating import service
    from tests.conftest import PASSWORD

    text = data.draw(instrument_files())
    instrument = parse_instrument(text.encode(), "rnd.toml")
    for old in instruments_dir.glob("*.toml"):
        old.unlink()
    (instruments_dir / "rnd.toml").write_text(text)
    _empty_tables()
    _study(factory)
    rater = db.session.scalars(db.select(User).where(User.username == "r1")).one()
    session = db.session.scalars(db.select(TherapySession)).first()
    assignment = factory.assignment(session, rater)
    service.start_rating(assignment)
    db.session.commit()
    client.post("/logout")
    assert client.post("/login", data={"username": "r1", "password": PASSWORD}).status_code == 302
    expected = {}
    changes = []
    for item in instrument.items:
        answer = _answer(data.draw, item)
        if answer is None and not item.required:
            continue
        if answer is None:
            answer = NOT_APPLICABLE if item.allows_not_applicable else _some(item)
        expected[item.code] = answer
        changes.append({"op": "score", "item": item.code, "value": _autosave_value(item, answer)})
    saved = client.post(
        f"/assignments/{assignment.id}/autosave", json={"base_version": 1, "changes": changes}
    )
    assert saved.status_code == 200, saved.get_json()
    submitted = client.post(
        f"/assignments/{assignment.id}/submit", headers={"Accept": "application/json"}
    )
    assert submitted.status_code == 200, submitted.get_json()
    first = _long()
    read = pd.read_csv(io.BytesIO(first), dtype=str, keep_default_na=False)
    got = {row.item: (row.score, _unneutralised(row.value), row.not_applicable)
           for row in read.itertuples(index=False)}  # fmt: skip
    assert got == {code: _cells(instrument.item(code), a) for code, a in expected.items()}
    _empty_tables()
    _study(factory)
    import_ratings(first, "long.csv", allow_incomplete=True)
    db.session.commit()
    assert _long() == first


def _some(item: Item):
    """An answer of a required item without N/A."""
    if item.kind == ItemKind.ORDINAL:
        return item.points[0]
    if item.kind == ItemKind.COUNT:
        return 0
    if item.kind == ItemKind.NOMINAL:
        return next(iter(item.categories))
    return "text"
