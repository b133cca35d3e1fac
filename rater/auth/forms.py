"""Login, account and password forms, and the empty form behind every bare POST button."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

try:  # WTForms >= 3.3 deprecates (value, label) tuples
    from wtforms.fields.choices import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms

    def _Choice(value: object, label: str) -> tuple[object, str]:
        return (value, label)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: every state change is a protected POST."""


class AddUserForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=80)])
    role = SelectField(
        "Role", choices=[_Choice("rater", "Rater"), _Choice("coordinator", "Coordinator")]
    )
    method = RadioField(
        "How they get their password",
        choices=[
            _Choice("link", "A one-time link where they choose their own password"),
            _Choice("password", "A random password, shown to you once"),
        ],
        default="link",
    )


class ResetPasswordForm(FlaskForm):
    method = RadioField(
        "New password",
        choices=[
            _Choice("link", "One-time link"),
            _Choice("password", "Random password shown once"),
        ],
        default="link",
    )


def _confirmed(form: FlaskForm, field: PasswordField) -> None:
    if field.data != form.new_password.data:
        raise ValidationError("the two new passwords differ")


class SetPasswordForm(FlaskForm):
    """Choose a password (through a set-password link)."""

    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        "New password again", validators=[DataRequired(), Length(max=200), _confirmed]
    )


class ChangePasswordForm(SetPasswordForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=200)]
    )
