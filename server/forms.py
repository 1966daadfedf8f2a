"""Flask-WTF forms (every form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    DateTimeLocalField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional


class Form(FlaskForm):  # type: ignore[misc]  # flask_wtf has no type hints: FlaskForm is Any to mypy
    """The base of every form here (FlaskForm: the CSRF token, validate_on_submit)."""


class LoginForm(Form):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class SetupForm(Form):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField("Repeat it", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class ActionForm(Form):
    """A form with nothing but the CSRF token (logout, regrade buttons, ...)."""


class TokenForm(Form):
    name = StringField("Token name", validators=[Optional(), Length(max=100)])


class UploadForm(Form):
    file = FileField("Submission zip")


class RosterForm(Form):
    file = FileField("Roster CSV")
    text = TextAreaField("...or paste it", validators=[Optional()])


class CreateAssignmentForm(Form):
    name = SelectField("Assignment spec", choices=[])


class AssignmentSettingsForm(Form):
    opens_at = DateTimeLocalField("Opens (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    closes_at = DateTimeLocalField("Closes (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    challenge_deadline = DateTimeLocalField("Challenge deadline (UTC)", format="%Y-%m-%dT%H:%M",
                                            validators=[Optional()])
    upload_limit = IntegerField("Upload limit", validators=[DataRequired(), NumberRange(min=1, max=100000)])
    max_upload_mb = IntegerField("Max upload size (MB)", validators=[DataRequired(), NumberRange(min=1, max=100000)])
    leaderboard_visibility = SelectField("Leaderboard", choices=[
        SelectChoice("public", "public (names)"), SelectChoice("anonymous", "anonymous nicknames"),
        SelectChoice("hidden", "hidden until the deadline")])
    leaderboard_counts = SelectField("Counted submission", choices=[SelectChoice("best"), SelectChoice("latest")])
    bonus_points = StringField("Bonus by rank", validators=[DataRequired(), Length(max=100)])
