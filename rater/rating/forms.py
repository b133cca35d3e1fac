"""Forms of the rating pages, and the scoring form's structure built from the pinned instruments.

The scoring form is one radio group per item, named by the item code, whose five choices are the
item's score points labelled with their verbal anchors. It is never posted: autosave (JSON)
saves and validates every score (``rater.rating.autosave``). So the template renders the radio
groups directly from ``instrument_blocks``, which is computed once per set of instrument
versions (they never change); building and rendering 75 WTForms radio options cost most of the
rating page's time.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from rater.instruments import SCORE_POINTS, Instrument, Item, Subscale
from rater.rating.models import CANNOT_RATE_CATEGORIES

try:  # WTForms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value: object, label: str) -> tuple[object, str]:  # type: ignore[misc]
        return (value, label)


CANNOT_RATE_LABELS = {
    "audio_unusable": "Audio unusable",
    "deviated_from_manual": "Session deviated from the manual",
    "other": "Other",
}


@dataclass(frozen=True)
class ScorePoint:
    """One radio option of an item: its score, verbal anchor and input id."""

    score: int
    anchor: str
    input_id: str


@dataclass(frozen=True)
class ItemRow:
    item: Item
    points: tuple[ScorePoint, ...]


@dataclass(frozen=True)
class ItemBlock:
    """One subscale group of an instrument as rendered: its heading and its items."""

    subscale: Subscale | None
    items: tuple[ItemRow, ...]


@dataclass(frozen=True)
class InstrumentBlock:
    instrument: Instrument
    groups: tuple[ItemBlock, ...]


_BLOCKS: dict[tuple[int, ...], tuple[tuple[Instrument, ...], tuple[InstrumentBlock, ...]]] = {}


def instrument_blocks(instruments: list[Instrument]) -> tuple[InstrumentBlock, ...]:
    """The scoring form's structure, computed once per set of (cached, immutable) instruments.

    Keyed by the instrument objects themselves: ``instrument_of`` hands out one object per
    stored version and process. The entry keeps those objects alive, so their ids stay theirs.
    """
    key = tuple(id(i) for i in instruments)
    hit = _BLOCKS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], instruments, strict=True)):
        return hit[1]
    if len(_BLOCKS) >= 64:
        _BLOCKS.clear()
    blocks = _blocks(tuple(instruments))
    _BLOCKS[key] = (tuple(instruments), blocks)
    return blocks


def _blocks(instruments: tuple[Instrument, ...]) -> tuple[InstrumentBlock, ...]:
    return tuple(
        InstrumentBlock(
            inst,
            tuple(
                ItemBlock(sub, tuple(_row(item) for item in items))
                for sub, items in inst.items_by_subscale()
            ),
        )
        for inst in instruments
    )


def _row(item: Item) -> ItemRow:
    points = (ScorePoint(p, item.anchors[p], f"{item.code}-{p}") for p in SCORE_POINTS)
    return ItemRow(item, tuple(points))


class CannotRateForm(FlaskForm):
    category = SelectField(
        "Why can this session not be rated?",
        choices=[_Choice(c, CANNOT_RATE_LABELS[c]) for c in CANNOT_RATE_CATEGORIES],
        validators=[DataRequired()],
    )
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])


class ReopenForm(FlaskForm):
    reason = TextAreaField("Reason for reopening", validators=[DataRequired(), Length(max=2000)])


class AssignedHomeworkForm(FlaskForm):
    """A coordinator's entry of homework assigned in a session for the next one."""

    homework_type = SelectField("Type", validators=[DataRequired()])
    description = StringField("Description", validators=[DataRequired(), Length(max=2000)])

    def set_types(self, types: list[str]) -> AssignedHomeworkForm:
        self.homework_type.choices = [_Choice(t, t) for t in types]
        return self
