"""Customer satisfaction: asked when a ticket is resolved, answered with one click.

**Asking.** A stream consumer (:func:`on_event`) sees each ``ticket.updated`` that resolved a
ticket and opens a survey for that resolution (a reopened ticket resolved again is asked again:
``round``), the agent it was assigned to being the one rated; a mail in the customer's language
(outbox purpose ``satisfaction.request``, composed by the email channel) carries one link per
score. A chat is asked at its end by the widget instead, a portal customer on the ticket's page.

**Answering.** A link names its survey with a signature (:func:`token_for`): a changed or made-up
link is refused, and a link rates only its own survey — never another ticket, never someone
else's. :func:`rate` records the score (1–5; a good/bad survey stores 5 or 1) and an optional
comment, changeable afterwards, as ``satisfaction.rated`` on the stream and a line in the
ticket's history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import (
    Customer,
    Direction,
    Message,
    SatisfactionRating,
    Ticket,
    TicketStatus,
)
from helpdesk.services import audit, stream
from helpdesk.services.errors import NotFound, ServiceError

CONSUMER = "satisfaction"
REQUEST_MAIL = "satisfaction.request"
SCALES = ("good_bad", "five")
GOOD, BAD = 5, 1
MAX_COMMENT = 5000
_SALT = "satisfaction"


def scale(app: Any = None) -> str:
    """The installation's survey: ``SATISFACTION_SCALE`` good_bad (default) or five."""
    value = str((app or current_app).config.get("SATISFACTION_SCALE") or "good_bad")
    return value if value in SCALES else "good_bad"


def enabled(app: Any = None) -> bool:
    return bool((app or current_app).config.get("SATISFACTION_ENABLED", True))


# --- asking --------------------------------------------------------------------------------------


def request_survey(
    session: Session, ticket: Ticket, *, when: datetime | None = None, mail: bool = True
) -> SatisfactionRating | None:
    """A survey for the ticket's latest resolution (None if that one has one already); mailed to
    the customer unless the ticket is a chat (its widget asks) or ``mail`` is False."""
    customer = ticket.customer
    last = session.scalar(
        select(SatisfactionRating)
        .where(SatisfactionRating.ticket_id == ticket.id)
        .order_by(SatisfactionRating.round.desc())
        .limit(1)
    )
    if last is not None and last.requested_at >= (ticket.resolved_at or last.requested_at):
        return None  # this resolution was asked about already
    if last is not None:
        # Asked before this resolution (at a chat's end, or a resolution since reopened by an
        # agent): ask again only if the customer has written since — a new conversation.
        latest = session.scalar(
            select(func.max(Message.created_at)).where(
                Message.ticket_id == ticket.id,
                Message.direction == Direction.INBOUND,
                Message.author_customer_id.is_not(None),
            )
        )
        if latest is None or latest <= last.requested_at:
            return None
    survey = SatisfactionRating(
        ticket_id=ticket.id,
        round=(last.round + 1) if last is not None else 1,
        customer_id=customer.id,
        agent_id=ticket.assignee_id,
        scale=scale(),
        comment="",
        language=customer.language or ticket.language,
        requested_at=when or utcnow(),
    )
    session.add(survey)
    session.flush()
    stream.record(
        session,
        "satisfaction.requested",
        "satisfaction",
        survey.id,
        None,
        ticket_id=ticket.id,
        round=survey.round,
        agent_id=survey.agent_id,
    )
    if mail and ticket.channel.value != "chat" and customer.email:
        from helpdesk.services.outbox import queue_mail

        queue_mail(
            session,
            REQUEST_MAIL,
            customer.email,
            customer_id=customer.id,
            ticket_id=ticket.id,
            language=survey.language,
            payload={"survey_id": survey.id, "token": token_for(survey)},
        )
    return survey


def on_event(session: Session, event: stream.StoredEvent) -> None:
    """The stream consumer: a ticket resolved (by anyone: an agent, the customer, a rule) is
    asked about, once per resolution."""
    if event.name != "ticket.updated" or event.ticket_id is None:
        return
    change = (event.data.get("changes") or {}).get("status")
    if not change or change.get("to") != TicketStatus.RESOLVED.value:
        return
    if not enabled():
        return
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None or ticket.status != TicketStatus.RESOLVED or ticket.merged_into_id:
        return
    request_survey(session, ticket, when=event.occurred_at)


# --- links ---------------------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.config["SECRET_KEY"]), salt=_SALT)


def token_for(survey: SatisfactionRating) -> str:
    return str(_serializer().dumps([survey.id, survey.ticket_id, survey.customer_id]))


def by_token(session: Session, token: str) -> SatisfactionRating:
    """The survey a link names; NotFound for a changed, made-up or stale link (its survey gone,
    or its ticket or customer not the survey's)."""
    try:
        survey_id, ticket_id, customer_id = _serializer().loads(token)
        survey = session.get(SatisfactionRating, int(survey_id))
    except (BadSignature, ValueError, TypeError):
        raise NotFound(_("This rating link is not valid.")) from None
    if survey is None or survey.ticket_id != ticket_id or survey.customer_id != customer_id:
        raise NotFound(_("This rating link is not valid."))
    return survey


def latest_for(session: Session, ticket: Ticket, customer: Customer) -> SatisfactionRating | None:
    """The customer's survey of this ticket's latest resolution (the portal asks with it)."""
    return session.scalar(
        select(SatisfactionRating)
        .where(
            SatisfactionRating.ticket_id == ticket.id,
            SatisfactionRating.customer_id == customer.id,
        )
        .order_by(SatisfactionRating.round.desc())
        .limit(1)
    )


# --- answering -----------------------------------------------------------------------------------


def clean_score(survey: SatisfactionRating, raw: Any) -> int:
    if survey.scale == "good_bad":
        text = str(raw).strip().lower()
        if text in ("good", "5", "yes"):
            return GOOD
        if text in ("bad", "1", "no"):
            return BAD
        raise ServiceError(_("Choose good or bad."), code="invalid_score")
    try:
        score = int(str(raw).strip())
    except ValueError:
        score = 0
    if not 1 <= score <= 5:
        raise ServiceError(_("Choose a score from 1 to 5."), code="invalid_score")
    return score


def rate(
    session: Session,
    survey: SatisfactionRating,
    score: Any,
    comment: str | None = None,
    *,
    channel: str,
    customer: Customer | None = None,
) -> SatisfactionRating:
    """Record (or change) the answer. ``customer``: who is answering when known (the portal's
    signed-in customer, the chat's visitor): only the survey's own customer may."""
    if customer is not None and customer.id != survey.customer_id:
        raise NotFound(_("This rating link is not valid."))
    new = clean_score(survey, score)
    text = (comment or "").strip()[:MAX_COMMENT] if comment is not None else survey.comment
    if new == survey.score and text == survey.comment:
        return survey
    first = survey.rated_at is None
    survey.score = new
    survey.comment = text
    survey.channel = channel
    survey.rated_at = utcnow()
    ticket = session.get(Ticket, survey.ticket_id)
    author = session.get(Customer, survey.customer_id)
    audit.record(
        session,
        ticket,
        author,
        "satisfaction.rated",
        score=new,
        scale=survey.scale,
        comment=bool(text),
        changed=not first,
    )
    stream.record(
        session,
        "satisfaction.rated",
        "satisfaction",
        survey.id,
        author,
        ticket_id=survey.ticket_id,
        round=survey.round,
        score=new,
        scale=survey.scale,
        agent_id=survey.agent_id,
        comment=text,
        channel=channel,
    )
    session.flush()
    return survey


def is_good(score: int | None) -> bool:
    return score is not None and score >= 4


def summary(session: Session, *, agent_id: int | None = None) -> dict[str, Any]:
    """Answered surveys and the share of good ones (4–5), for an agent or everyone."""
    good_one = case((SatisfactionRating.score >= 4, 1), else_=0)
    q = select(func.count(), func.sum(good_one)).where(SatisfactionRating.rated_at.is_not(None))
    if agent_id is not None:
        q = q.where(SatisfactionRating.agent_id == agent_id)
    answered, good = session.execute(q).one()
    answered = int(answered or 0)
    good = int(good or 0)
    return {"answered": answered, "good": good, "share": (good / answered) if answered else None}
