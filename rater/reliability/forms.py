"""Forms of the reliability pages: the consensus form is built from the session's instruments."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import SelectField

from rater.instruments import Instrument, Item

try:  # WTForms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value: object, label: str) -> tuple[object, str]:  # type: ignore[misc]
        return (value, label)


NO_SCORE = ""


def _choices(item: Item) -> list:
    return [_Choice(NO_SCORE, "–"), *(_Choice(str(p), str(p)) for p in item.points)]


def field_name(item_code: str) -> str:
    return f"item_{item_code}"


def consensus_form(
    instruments: Iterable[Instrument], suggested: dict[str, int | None]
) -> FlaskForm:
    """A form with one choice of the item's score points (or blank) per item, preset to
    ``suggested``."""

    class ConsensusForm(FlaskForm):
        pass

    for instrument in instruments:
        for item in instrument.items:
            value = suggested.get(item.code)
            setattr(
                ConsensusForm,
                field_name(item.code),
                SelectField(
                    f"{item.code} {item.label}",
                    choices=_choices(item),
                    default=NO_SCORE if value is None else str(value),
                ),
            )
    return ConsensusForm()


def consensus_scores(form: FlaskForm, instruments: Iterable[Instrument]) -> dict[str, int | None]:
    """Item -> chosen score (None for blank) from a validated consensus form."""
    out: dict[str, int | None] = {}
    for instrument in instruments:
        for item in instrument.items:
            raw = form[field_name(item.code)].data
            out[item.code] = None if raw in (None, NO_SCORE) else int(raw)
    return out
