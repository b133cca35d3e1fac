"""Forms of the coordinator's allocation pages (validation lives here, not in the views)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, HiddenField, IntegerField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

MAX_SEED = 2**31 - 1


class AllocationForm(FlaskForm):
    """Design parameters. As a GET form (``meta={"csrf": False}``) it drives the preview; as
    a POST form it commits, carrying the digest of the previewed plan."""

    double_fraction = FloatField(
        "Share of sessions double-coded",
        validators=[InputRequired(), NumberRange(min=0.0, max=1.0)],
        default=0.4,
    )
    seed = IntegerField(
        "Random seed", validators=[InputRequired(), NumberRange(min=0, max=MAX_SEED)], default=0
    )
    keep_unstarted = BooleanField("Keep unstarted assignments (only place uncovered work)")
    digest = HiddenField()


class DrawCalibrationForm(FlaskForm):
    n = IntegerField(
        "Number of sessions", validators=[InputRequired(), NumberRange(min=1, max=50)], default=3
    )
    seed = IntegerField(
        "Random seed", validators=[InputRequired(), NumberRange(min=0, max=MAX_SEED)], default=0
    )
    exclude = BooleanField("Exclude them from the main pool (reason: calibration session)")


class PickCalibrationForm(FlaskForm):
    sessions = TextAreaField(
        "Session codes (separated by spaces, commas or new lines)",
        validators=[InputRequired(), Length(max=5000)],
    )
    exclude = BooleanField("Exclude them from the main pool (reason: calibration session)")

    @property
    def codes(self) -> list[str]:
        return [c for c in self.sessions.data.replace(",", " ").split() if c]


class GateForm(FlaskForm):
    enabled = BooleanField("Hold main assignments until calibration passes")
    threshold = FloatField(
        "Minimum calibration ICC",
        validators=[InputRequired(), NumberRange(min=-1.0, max=1.0)],
        default=0.75,
    )


class RaterChangeForm(FlaskForm):
    rater = SelectField("Rater", validators=[InputRequired()], choices=[])
    deactivate = BooleanField("Also deactivate the account", validators=[Optional()])
    confirm = BooleanField("Apply (leave unticked to preview the effect)")


class MoveForm(FlaskForm):
    rater = SelectField("Move to rater", validators=[InputRequired()], choices=[])
