"""Forms of the rating pages, and the scoring form's structure built from the pinned instruments.

The scoring form is a WTForms form with one ``RadioField`` per item, named by the item code, whose
five choices are the item's score points labelled with their verbal anchors. Its values are saved
by autosave (JSON) rather than by posting the form; the form renders the accessible markup. The
form class and the page's grouping (``instrument_blocks``) are built once per set of instrument
versions (they never change), so a request only instantiates the form.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from rater.instruments import Instrument, Item, Subscale
from rater.states import CannotRateCategory

try:  # WTForms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value: object, label: str) -> tuple[object, str]:  # type: ignore[misc]
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


def scoring_form_class(instruments: list[Instrument]) -> type[FlaskForm]:
    """A form class with one radio field per item of the given instruments (built once)."""
    return _per_instrument_set("form", instruments, _form_class)


def _form_class(instruments: tuple[Instrument, ...]) -> type[FlaskForm]:
    fields = {}
    for instrument in instruments:
        for item in instrument.items:
            fields[item.code] = RadioField(
                item.label,
                choices=[_Choice(p, item.anchor(p)) for p in item.points],
                coerce=int,
                validators=[DataRequired() if item.required else Optional()],
            )
    return type("ScoringForm", (FlaskForm,), fields)


def scoring_form(instruments: list[Instrument], scores: dict[str, int]) -> FlaskForm:
    """The scoring form filled with the saved scores (never from the request: autosave owns it)."""
    return scoring_form_class(instruments)(formdata=None, data=scores, meta={"csrf": False})


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
