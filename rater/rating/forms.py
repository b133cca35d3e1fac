"""Forms of the rating pages; the scoring form is built from the pinned instrument versions.

The scoring form is a WTForms form with one ``RadioField`` per item, named by the item code, whose
five choices are the item's score points labelled with their verbal anchors. Its values are saved
by autosave (JSON) rather than by posting the form; the form renders the accessible markup and
validates scores in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

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
class ItemBlock:
    """One subscale group of an instrument as rendered: its heading and its items."""

    subscale: Subscale | None
    items: list[Item]


@dataclass(frozen=True)
class InstrumentBlock:
    instrument: Instrument
    groups: list[ItemBlock]


def instrument_blocks(instruments: list[Instrument]) -> list[InstrumentBlock]:
    return [
        InstrumentBlock(inst, [ItemBlock(sub, items) for sub, items in inst.items_by_subscale()])
        for inst in instruments
    ]


def scoring_form_class(instruments: list[Instrument]) -> type[FlaskForm]:
    """A form class with one radio field per item of the given instruments."""
    fields = {}
    for instrument in instruments:
        for item in instrument.items:
            fields[item.code] = RadioField(
                item.label,
                choices=[_Choice(p, item.anchors[p]) for p in SCORE_POINTS],
                coerce=int,
                validators=[DataRequired() if item.required else Optional()],
            )
    return type("ScoringForm", (FlaskForm,), fields)


def scoring_form(instruments: list[Instrument], scores: dict[str, int]) -> FlaskForm:
    """The scoring form filled with the saved scores (never from the request: autosave owns it)."""
    form_class = scoring_form_class(instruments)
    form = form_class(formdata=None, data=scores, meta={"csrf": False})
    return form


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
