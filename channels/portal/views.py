"""The customer portal (adapter): a contact form that opens a ticket through the one inbound path.

This is the portal's entry point; the knowledge base, suggestions while typing, magic-link
ticket tracking and "My tickets" build on it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from werkzeug.wrappers import Response
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from channels.inbound import InboundAttachment, InboundMessage
from helpdesk.extensions import db, limiter
from helpdesk.i18n import _, _l
from helpdesk.services.errors import ServiceError
from helpdesk.services.inbound import receive

bp = Blueprint("portal", __name__, url_prefix="/portal")


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


def _portal_limit() -> str:
    return str(current_app.config.get("RATELIMIT_PORTAL", "10 per hour"))


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(_portal_limit, methods=["POST"])
def home() -> str | tuple[str, int] | Response:
    form = ContactForm()
    if request.method == "POST":
        if form.website.data:
            return render_template("portal/thanks.html", number=None)
        if not form.validate_on_submit():
            # Everything typed stays in the form; the errors say what to fix.
            return render_template("portal/home.html", form=form), 400
        files = [f for f in (form.attachments.data or []) if f and f.filename]
        limit = int(current_app.config["ATTACHMENT_MAX_BYTES"])
        attachments = []
        for f in files:
            data = f.read()
            if len(data) > limit:
                form.attachments.errors = [
                    _(
                        "%(name)s is larger than %(mb)d MB.",
                        name=f.filename,
                        mb=limit // (1024 * 1024),
                    )
                ]
                return render_template("portal/home.html", form=form), 400
            attachments.append(
                InboundAttachment(
                    f.filename or "attachment", f.mimetype or "application/octet-stream", data
                )
            )
        lang = str(request.accept_languages.best_match(current_app.config["LANGUAGES"]) or "en")
        try:
            received = receive(
                db.session,
                InboundMessage(
                    channel_kind="portal",
                    identity_kind="email",
                    sender_address=form.email.data or "",
                    sender_name=(form.name.data or "").strip() or None,
                    subject=form.subject.data or "",
                    text=form.description.data or "",
                    attachments=attachments,
                    language=lang,
                ),
            )
        except ServiceError as exc:
            form.email.errors = [str(exc)]
            return render_template("portal/home.html", form=form), 400
        db.session.commit()
        return render_template("portal/thanks.html", number=received.ticket.number)
    return render_template("portal/home.html", form=form)
