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
    # Set by the confirmation page: the first POST only shows what committing will change.
    confirmed = HiddenField()
    release_in_batches = BooleanField("Hold the new work and release it to the raters in batches")


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
    # Set by the confirmation page: the first POST only shows what the change will do.
    confirmed = HiddenField()
    release = BooleanField("Also release the held work now")


class RaterChangeForm(FlaskForm):
    rater = SelectField("Rater", validators=[InputRequired()], choices=[])
    deactivate = BooleanField("Also deactivate the account", validators=[Optional()])
    confirm = BooleanField("Apply (leave unticked to preview the effect)")


class MoveForm(FlaskForm):
    rater = SelectField("Move to rater", validators=[InputRequired()], choices=[])
    reason = TextAreaField(
        "Reason (kept in the audit log)", validators=[InputRequired(), Length(min=3, max=500)]
    )
    confirmed = HiddenField()


class ReleaseForm(FlaskForm):
    """A batch: per rater N held sessions (or all), optionally one phase or therapist."""

    per_rater = IntegerField(
        "Sessions per rater (empty: all held work)",
        validators=[Optional(), NumberRange(min=1, max=1000)],
    )
    phase = SelectField("Phase", choices=[], validators=[Optional()])
    therapist = SelectField("Therapist", choices=[], validators=[Optional()])
    order = SelectField("Order in each rater's queue", choices=[], default="shuffled")

    ORDERS = (
        ("shuffled", "shuffled (patients, therapists and phases interleaved)"),
        ("session", "session order (patient by patient)"),
    )
