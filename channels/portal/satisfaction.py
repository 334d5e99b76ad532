"""The portal's satisfaction pages: the rating page a survey mail's links open (no sign-in: the
link's signature is the key, and it rates only its own survey), and the rating form on a
signed-in customer's resolved ticket.

A link only *shows* the chosen score: the page records it with a POST of its own (a tiny script
submits the form on load; without JavaScript the customer presses the one button), so mail
scanners that follow every link rate nothing. Then a thank-you with an optional comment, which
can also change the score. Every change goes through ``services.satisfaction.rate``."""

from __future__ import annotations

from typing import Any, cast

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as web_session
from flask_babel import refresh
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from channels.email.satisfaction_mail import score_choices
from channels.portal.views import _customer, _my_ticket, _portal_limit, customer_required
from helpdesk.extensions import db, limiter
from helpdesk.i18n import _, _l
from helpdesk.models import Customer, SatisfactionRating, Ticket, TicketStatus
from helpdesk.services import satisfaction
from helpdesk.services.errors import NotFound, ServiceError

bp = Blueprint("portal_rating", __name__, url_prefix="/portal")


class RatingForm(FlaskForm):
    score = RadioField(_l("Your rating"), validators=[DataRequired()], choices=[])
    comment = TextAreaField(
        _l("Anything you want to tell us? (optional)"),
        validators=[Optional(), Length(max=satisfaction.MAX_COMMENT)],
    )


def rating_form(survey: SatisfactionRating, chosen: str | None = None) -> RatingForm:
    """The form for this survey's scale; ``chosen`` (a link's score) or the answer preselected."""
    form = RatingForm()
    form.score.choices = score_choices(survey.scale)
    if not form.is_submitted():
        form.score.data = chosen or as_choice(survey)
        form.comment.data = survey.comment
    return form


def as_choice(survey: SatisfactionRating) -> str | None:
    """The stored score as the form's value (good/bad, or "1".."5")."""
    if survey.score is None:
        return None
    if survey.scale == "good_bad":
        return "good" if satisfaction.is_good(survey.score) else "bad"
    return str(survey.score)


def _valid_choice(survey: SatisfactionRating, raw: str | None) -> str | None:
    values = [value for value, _label in score_choices(survey.scale)]
    return raw if raw in values else None


def _survey(token: str) -> SatisfactionRating:
    # A changed, made-up or stale link: NotFound, the 404 page saying the link is not valid.
    survey = satisfaction.by_token(db.session, token)
    # The page speaks the survey's language unless the reader chose one on the site.
    if "lang" not in web_session and survey.language in current_app.config["LANGUAGES"]:
        g.force_locale = survey.language
        refresh()
    return survey


def _render(token: str, survey: SatisfactionRating, form: RatingForm, *, auto: bool) -> Any:
    ticket = db.session.get(Ticket, survey.ticket_id)
    return render_template(
        "portal/rate.html",
        survey=survey,
        ticket=ticket,
        form=form,
        auto=auto,
        action=url_for("portal_rating.rate", token=token),
    )


@bp.route("/rate/<token>", methods=["GET", "POST"])
@limiter.limit(_portal_limit, methods=["POST"])
def rate(token: str) -> Any:
    """GET: the chosen score preselected (``?score=``), recorded by the page's own POST; or,
    once answered, the thank-you with the comment box. POST: record the score (and comment)."""
    survey = _survey(token)
    if request.method == "GET":
        chosen = _valid_choice(survey, request.args.get("score"))
        pending = chosen is not None and chosen != as_choice(survey)
        form = rating_form(survey, chosen)
        if pending:
            # The comment box comes on the thank-you page; here only the one choice is sent.
            return _render(token, survey, form, auto=True)
        return _render(token, survey, form, auto=False)
    form = rating_form(survey)
    if not form.validate_on_submit():
        return _render(token, survey, form, auto=False), 400
    comment = form.comment.data if "comment" in request.form else None
    try:
        satisfaction.rate(db.session, survey, form.score.data, comment, channel="email")
    except ServiceError as exc:
        db.session.rollback()
        form.score.errors = [str(exc)]
        return _render(token, survey, form, auto=False), 400
    db.session.commit()
    if comment is not None:
        flash(_("Thank you! Your comment was saved."), "success")
    return redirect(url_for("portal_rating.rate", token=token))


# --- the signed-in customer's ticket page ---------------------------------------------------


def open_survey(ticket: Ticket) -> SatisfactionRating | None:
    """The survey the ticket page asks about: its latest resolution's, while it is resolved."""
    me = _customer()
    if me is None or ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return None
    return satisfaction.latest_for(db.session, ticket, me)


@bp.app_template_global("portal_survey_form")
def portal_survey_form(ticket: Ticket) -> dict[str, Any] | None:
    """What the portal's ticket page needs to show the rating form (its include calls this)."""
    survey = open_survey(ticket)
    if survey is None:
        return None
    return {"survey": survey, "form": rating_form(survey)}


@bp.post("/tickets/<int:number>/rate")
@customer_required
@limiter.limit(_portal_limit)
def rate_ticket(number: int) -> Response:
    ticket = _my_ticket(number)
    survey = open_survey(ticket)
    if survey is None:
        abort(404)
    form = rating_form(survey)
    me = cast(Customer, _customer())
    if form.validate_on_submit():
        try:
            satisfaction.rate(
                db.session,
                survey,
                form.score.data,
                form.comment.data or "",
                channel="portal",
                customer=me,
            )
        except (ServiceError, NotFound) as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("Thank you for your rating!"), "success")
    else:
        flash(_("Choose a rating first."), "error")
    return redirect(url_for("portal.ticket", number=ticket.number) + "#rating")
