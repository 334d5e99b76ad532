"""The satisfaction rating at a chat's end: the widget offers it once the chat has ended
(either side ending it), and ``chat.rate`` on ``/chat`` records it (:func:`rate_chat`).

A chat ticket is asked by its widget, never by mail (``services.satisfaction.request_survey``
sends none for chats). Which survey the visitor answers: the chat ticket's latest one, when
the ticket was resolved before or as the chat ended; otherwise (the usual case: an agent ends
the chat and resolves the ticket later, or never) one is opened now for the ticket as it is,
with the agent it is assigned to, so the answer is not lost. A later resolution of the ticket
then opens the next round, unmailed, which the visitor is not asked about again."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from channels.chat.models import ChatSession, ChatStatus
from helpdesk.i18n import _
from helpdesk.models import SatisfactionRating
from helpdesk.services import satisfaction
from helpdesk.services.errors import ServiceError

SCORES = ("good", "bad", "1", "2", "3", "4", "5")


def widget_settings(app: Any = None) -> dict[str, Any]:
    """What the widget needs to offer the rating: whether to, and on which scale."""
    app = app or current_app
    return {"enabled": satisfaction.enabled(app), "scale": satisfaction.scale(app)}


def rate_chat(
    session: Session, chat: ChatSession, score: str, comment: str | None
) -> SatisfactionRating:
    """Record the visitor's rating of an ended chat (or change it)."""
    if chat.status is not ChatStatus.ENDED or not satisfaction.enabled():
        raise ServiceError(_("This chat has no rating to give."), code="not_rateable")
    ticket = chat.ticket
    customer = ticket.customer
    survey = satisfaction.latest_for(session, ticket, customer)
    if survey is None:
        survey = satisfaction.request_survey(session, ticket, mail=False)
    if survey is None:  # pragma: no cover - request_survey opens one when none exists
        raise ServiceError(_("This chat has no rating to give."), code="not_rateable")
    return satisfaction.rate(session, survey, score, comment, channel="chat", customer=customer)


def rating_state(survey: SatisfactionRating) -> dict[str, Any]:
    """The acknowledgement's ``rating``: what the widget shows as recorded."""
    return {"scale": survey.scale, "score": survey.score, "comment": survey.comment}
