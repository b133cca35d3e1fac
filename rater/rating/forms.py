"""Forms of the rating pages, and the scoring form's structure built from the pinned instruments.

The scoring form is rendered item by item from the pinned instruments by the macro in
``templates/rating/_item.html`` (by the item's kind); its values are saved by autosave (JSON)
rather than by posting the form. The page's grouping (``instrument_blocks``) is built once per
set of instrument versions (they never change).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from rater.instruments import Instrument, Item, Subscale
from rater.states import CannotRateCategory

try:  # WTForms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value: object, label: str) -> tuple[object, str]:
        return (value, label)


CANNOT_RATE_LABELS = {
    CannotRateCategory.AUDIO_UNUSABLE: "Audio unusable",
    CannotRateCategory.DEVIATED_FROM_MANUAL: "Session deviated from the manual",
    CannotRateCategory.OTHER: "Other",
}


@dataclass(frozen=True)
class ItemBlock:
    """One subscale group of an instrument as rendered: its heading and its items."""

    subscale: Subscale | None
    items: tuple[Item, ...]


@dataclass(frozen=True)
class InstrumentBlock:
    instrument: Instrument
    groups: tuple[ItemBlock, ...]


_CACHE: dict[tuple[str, tuple[int, ...]], tuple[tuple[Instrument, ...], object]] = {}


def _per_instrument_set(kind: str, instruments: list[Instrument], build):
    """``build(instruments)`` once per set of (cached, immutable) instrument objects.

    Keyed by the instrument objects themselves: ``instrument_of`` hands out one object per
    stored version and process. The entry keeps those objects alive, so their ids stay theirs.
    """
    key = (kind, tuple(id(i) for i in instruments))
    hit = _CACHE.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], instruments, strict=True)):
        return hit[1]
    if len(_CACHE) >= 64:
        _CACHE.clear()
    value = build(tuple(instruments))
    _CACHE[key] = (tuple(instruments), value)
    return value


def instrument_blocks(instruments: list[Instrument]) -> tuple[InstrumentBlock, ...]:
    """The scoring form's grouping: instruments, their subscales and items."""
    return _per_instrument_set("blocks", instruments, _blocks)


def _blocks(instruments: tuple[Instrument, ...]) -> tuple[InstrumentBlock, ...]:
    return tuple(
        InstrumentBlock(
            inst,
            tuple(ItemBlock(sub, tuple(items)) for sub, items in inst.items_by_subscale()),
        )
        for inst in instruments
    )


class CannotRateForm(FlaskForm):
    category = SelectField(
        "Why can this session not be rated?",
        choices=[_Choice(c, CANNOT_RATE_LABELS[c]) for c in CannotRateCategory],
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
