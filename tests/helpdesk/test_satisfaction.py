"""Satisfaction: a resolved ticket asks its customer once per resolution (in their language);
a one-click link rates only its own survey; a forged link or another customer is refused; a
reopened ticket resolved again is asked again; the agent it was assigned to is the one rated."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AuditEvent, OutboundMail, SatisfactionRating, TicketStatus
from helpdesk.services import satisfaction, stream, tickets
from helpdesk.services.errors import NotFound, ServiceError
from tests.conftest import MakeTicket

pytestmark = pytest.mark.usefixtures("db_backend")


@pytest.fixture(autouse=True)
def consumer_at_end(session: Session) -> None:
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event, start_at_end=True)
    session.commit()


def run(session: Session) -> int:
    session.commit()
    handled = stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event)
    session.commit()
    return handled


def surveys(session: Session) -> list[SatisfactionRating]:
    return list(session.scalars(select(SatisfactionRating).order_by(SatisfactionRating.id)))


def mails(session: Session) -> list[OutboundMail]:
    return list(
        session.scalars(
            select(OutboundMail)
            .where(OutboundMail.purpose == satisfaction.REQUEST_MAIL)
            .order_by(OutboundMail.id)
        )
    )


def resolved(session: Session, agent: Agent, make_ticket: MakeTicket, **kw: Any) -> Any:
    ticket = make_ticket(**kw).ticket
    tickets.assign_ticket(session, ticket, agent, agent)
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    run(session)
    return ticket


def test_a_resolved_ticket_asks_once_in_the_customers_language(
    session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    ticket = resolved(session, agent, make_ticket, sender="rahim@example.com", language="bn")
    (survey,) = surveys(session)
    assert (survey.ticket_id, survey.round, survey.agent_id) == (ticket.id, 1, agent.id)
    assert survey.score is None and survey.language == "bn"
    (mail,) = mails(session)
    assert (mail.recipient, mail.language) == ("rahim@example.com", "bn")
    assert satisfaction.by_token(session, mail.payload["token"]).id == survey.id
    run(session)
    assert len(surveys(session)) == 1 and len(mails(session)) == 1  # once


def test_one_click_rates_and_the_comment_can_follow(
    session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    ticket = resolved(session, agent, make_ticket)
    (survey,) = surveys(session)
    start = stream.last_id(session)
    satisfaction.rate(session, survey, "good", None, channel="email")
    satisfaction.rate(session, survey, "good", "দ্রুত সমাধান, ধন্যবাদ!", channel="email")
    session.commit()
    assert survey.score == satisfaction.GOOD and survey.comment == "দ্রুত সমাধান, ধন্যবাদ!"
    rated = [e for e in stream.read(session, after=start) if e.name == "satisfaction.rated"]
    assert [(e.data["score"], e.data["agent_id"]) for e in rated] == [(5, agent.id), (5, agent.id)]
    history = session.scalars(
        select(AuditEvent).where(
            AuditEvent.ticket_id == ticket.id, AuditEvent.action == "satisfaction.rated"
        )
    ).all()
    assert len(history) == 2
    with pytest.raises(ServiceError):
        satisfaction.rate(session, survey, "excellent", None, channel="email")
    assert satisfaction.summary(session, agent_id=agent.id) == {
        "answered": 1,
        "good": 1,
        "share": 1.0,
    }


def test_a_link_rates_only_its_own_survey(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    mine = resolved(session, agent, make_ticket, sender="mine@example.com")
    resolved(session, agent, make_ticket, sender="theirs@example.com")
    first, second = surveys(session)
    token = satisfaction.token_for(first)
    # a changed link: refused
    for forged in (token[:-2] + "xx", token.replace(".", "-"), "abc", ""):
        with pytest.raises(NotFound):
            satisfaction.by_token(session, forged)
    # another survey's id with this survey's signature: refused (the signature covers it)
    head, _, sig = token.partition(".")
    with pytest.raises(NotFound):
        satisfaction.by_token(session, satisfaction.token_for(second).split(".")[0] + "." + sig)
    # the other customer, signed in on the portal, cannot answer this one
    other = session.get(type(mine.customer), second.customer_id)
    with pytest.raises(NotFound):
        satisfaction.rate(session, first, "bad", None, channel="portal", customer=other)
    assert head


def test_reopened_and_resolved_again_is_asked_again(
    session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    ticket = resolved(session, agent, make_ticket)
    satisfaction.rate(session, surveys(session)[0], "bad", "Not fixed", channel="email")
    make_ticket(text="Still broken", ticket_id=ticket.id)  # the customer writes: reopened
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    run(session)
    rounds = [(s.round, s.score) for s in surveys(session)]
    assert rounds == [(1, satisfaction.BAD), (2, None)]
    assert len(mails(session)) == 2


def test_a_five_point_survey_and_chats_asked_by_their_widget(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    app.config["SATISFACTION_SCALE"] = "five"
    resolved(session, agent, make_ticket, channel="chat", sender="visitor-1")
    (survey,) = surveys(session)
    assert survey.scale == "five" and mails(session) == []  # a chat is asked at its end
    satisfaction.rate(session, survey, "3", None, channel="chat")
    assert survey.score == 3
    for bad in ("0", "6", "good"):
        with pytest.raises(ServiceError):
            satisfaction.rate(session, survey, bad, None, channel="chat")


def test_a_chat_rated_at_its_end_is_not_asked_again_when_resolved(
    session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    """The widget asked at the chat's end (a survey before the resolution); resolving the ticket
    afterwards asks nothing more, unless the customer wrote again meanwhile."""
    ticket = make_ticket(channel="chat", sender="visitor-9").ticket
    asked = satisfaction.request_survey(session, ticket, mail=False)
    assert asked is not None
    satisfaction.rate(session, asked, "good", None, channel="chat")
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    run(session)
    assert [s.round for s in surveys(session)] == [1]
    make_ticket(channel="chat", sender="visitor-9", text="One more thing", ticket_id=ticket.id)
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    run(session)
    assert [s.round for s in surveys(session)] == [1, 2]
