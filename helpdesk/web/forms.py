"""Forms (Flask-WTF): CSRF on every POST, labels through gettext."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import LazyString
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.i18n import _l


def choices(pairs: Iterable[tuple[str, object]]) -> list[SelectChoice]:
    """(value, label) pairs as wtforms 3.3+ wants them. A lazy label (``_l``) stays lazy, so
    choices declared on a form class are translated when a page renders them, in the reader's
    language (``str()`` here froze them in English when the module was imported)."""
    return [
        SelectChoice(value, label if isinstance(label, LazyString) else str(label))
        for value, label in pairs
    ]


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField(_l("Keep me signed in"))
    next = HiddenField()


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Reply"), validators=[DataRequired(), Length(max=100_000)])
    status = SelectField(_l("Then set status to"), choices=[], validators=[Optional()])
    version = HiddenField()
    attachments = MultipleFileField(_l("Attach files"))


class NoteForm(FlaskForm):
    body = TextAreaField(_l("Internal note"), validators=[DataRequired(), Length(max=100_000)])


class AssignForm(FlaskForm):
    assignee = SelectField(_l("Assignee"), choices=[], validators=[Optional()])


class TeamForm(FlaskForm):
    team = SelectField(_l("Team"), choices=[], validators=[Optional()])


class StatusForm(FlaskForm):
    status = SelectField(_l("Status"), choices=[], validators=[DataRequired()])


class PriorityForm(FlaskForm):
    priority = SelectField(_l("Priority"), choices=[], validators=[DataRequired()])


class TagsForm(FlaskForm):
    tags = StringField(_l("Tags"), validators=[Length(max=2000)])


class LanguageForm(FlaskForm):
    lang = SelectField(_l("Language"), choices=choices([("en", "English"), ("bn", "বাংলা")]))
    next = HiddenField()


class RetryForm(FlaskForm):
    pass
