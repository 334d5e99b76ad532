"""Forms of the customer portal (CSRF on every one through Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.i18n import _l


class ContactForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Optional(), Length(max=200)])
    email = EmailField(_l("Your email"), validators=[DataRequired(), Length(max=320)])
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=300)])
    description = TextAreaField(
        _l("How can we help?"), validators=[DataRequired(), Length(max=50_000)]
    )
    attachments = MultipleFileField(_l("Attach files"))
    # A field people never see: bots fill it, and we then pretend to accept silently.
    website = StringField(validators=[Optional()])


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Your reply"), validators=[DataRequired(), Length(max=50_000)])
    attachments = MultipleFileField(_l("Attach files"))


class SignInForm(FlaskForm):
    email = EmailField(
        _l("Your email"),
        validators=[DataRequired(), Length(max=320)],
    )
    password = PasswordField(_l("Password (if you set one)"), validators=[Optional()])
    website = StringField(validators=[Optional()])


class VoteForm(FlaskForm):
    comment = TextAreaField(_l("What was missing? (optional)"), validators=[Length(max=2000)])


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])


class EmptyForm(FlaskForm):
    """Just the CSRF token (buttons that post)."""
