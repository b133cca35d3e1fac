"""Forms of the reliability pages: the consensus form is built from the session's instruments.

One field per item that a consensus can settle: a choice of the score points of an ordinal item
or the categories of a nominal item (plus "not applicable" where the item allows it), a whole
number for a count. Text items and nominal items with several categories get none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Regexp

from rater.instruments import NOT_APPLICABLE, Answer, Instrument, Item, ItemKind

try:  # WTForms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value: object, label: str) -> tuple[object, str]:
        return (value, label)


NO_SCORE = ""
NA_CHOICE = "na"


def _choices(item: Item) -> list:
    if item.kind == ItemKind.NOMINAL:
        options = [_Choice(code, code) for code in item.categories]
    else:
        options = [_Choice(str(p), str(p)) for p in item.points]
    if item.allows_not_applicable:
        options.append(_Choice(NA_CHOICE, "N/A"))
    return [_Choice(NO_SCORE, "–"), *options]


def field_name(item_code: str) -> str:
    return f"item_{item_code}"


def settled_by_consensus(item: Item) -> bool:
    """Ordinal and count items, and nominal items with one category."""
    return item.kind in (ItemKind.ORDINAL, ItemKind.COUNT) or (
        item.kind == ItemKind.NOMINAL and not item.multiple
    )


def _choice_of(answer: Answer | None) -> str:
    if answer is None:
        return NO_SCORE
    return NA_CHOICE if answer is NOT_APPLICABLE else str(answer)


def consensus_form(
    instruments: Iterable[Instrument], suggested: dict[str, Answer | None]
) -> FlaskForm:
    """A form with one field per item (:func:`settled_by_consensus`), preset to ``suggested``."""

    class ConsensusForm(FlaskForm):
        pass

    for instrument in instruments:
        for item in instrument.items:
            if not settled_by_consensus(item):
                continue
            default = _choice_of(suggested.get(item.code))
            label = f"{item.code} {item.label}"
            field: Any
            if item.kind == ItemKind.COUNT:
                pattern = r"^(\d+|na)?$" if item.allows_not_applicable else r"^\d*$"
                field = StringField(label, default=default, validators=[Regexp(pattern)])
            else:
                field = SelectField(label, choices=_choices(item), default=default)
            setattr(ConsensusForm, field_name(item.code), field)
    return ConsensusForm()


def consensus_scores(
    form: FlaskForm, instruments: Iterable[Instrument]
) -> dict[str, Answer | None]:
    """Item -> chosen answer (None for blank) from a validated consensus form."""
    out: dict[str, Answer | None] = {}
    for instrument in instruments:
        for item in instrument.items:
            if not settled_by_consensus(item):
                continue
            raw = (form[field_name(item.code)].data or "").strip()
            if raw == NO_SCORE:
                out[item.code] = None
            elif raw == NA_CHOICE:
                out[item.code] = NOT_APPLICABLE
            else:
                out[item.code] = int(raw) if item.is_numeric else raw
    return out
