"""The satisfaction survey a customer sees: the mail (through a real SMTP server, in Bengali,
threaded on the ticket, one working link per score), the portal's rating page (a link only
shows the score; the page's own POST records it; then a comment), a forged link's 404, a link
that cannot rate another ticket, and the rating form on a signed-in customer's ticket page."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.satisfaction_mail import compose_satisfaction_request
from channels.portal import magic
from helpdesk.models import (
    Agent,
    DeliveryStatus,
    OutboundMail,
    SatisfactionRating,
    Ticket,
    TicketStatus,
)
from helpdesk.services import customer_privacy, outbox, satisfaction, stream, tickets
from tests.conftest import MakeTicket, bn
from tests.servers import SmtpSink

pytestmark = pytest.mark.usefixtures("db_backend")

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "smtp_sink" in request.fixturenames:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        return {"SMTP_HOST": sink.host, "SMTP_PORT": sink.port, "OUTBOX_BACKOFF_BASE_SECONDS": 0.0}
    return {}


@pytest.fixture(autouse=True)
def consumer_at_end(session: Session) -> None:
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event, start_at_end=True)
    session.commit()


def resolve(session: Session, agent: Agent, ticket: Ticket) -> SatisfactionRating:
    tickets.assign_ticket(session, ticket, agent, agent)
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    session.commit()
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event)
    session.commit()
    survey = session.scalars(
        select(SatisfactionRating)
        .where(SatisfactionRating.ticket_id == ticket.id)
        .order_by(SatisfactionRating.round.desc())
    ).first()
    assert survey is not None
    return survey


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)


def csrf(page: Any) -> str:
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1)


def test_the_mail_in_bengali_and_its_link_rates_only_after_the_pages_post(
    app: Flask,
    session: Session,
    agent: Agent,
    make_ticket: MakeTicket,
    client: FlaskClient,
    smtp_sink: SmtpSink,
) -> None:
    ticket = make_ticket(
        sender="rahim@example.com",
        subject="অর্ডার আসেনি",
        language="bn",
        message_id="first-mail@customer.example",
    ).ticket
    survey = resolve(session, agent, ticket)
    session.commit()  # the worker's drain writes in its own transaction
    assert outbox.drain(app) == 1
    (got,) = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ("rahim@example.com",)
    mail = parse(got.data)
    assert str(mail["Subject"]) == bn("How did we do? [#%(number)s] %(subject)s") % {
        "number": ticket.number,
        "subject": "অর্ডার আসেনি",
    }
    assert mail["In-Reply-To"] == "<first-mail@customer.example>"
    assert "<first-mail@customer.example>" in mail["References"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert bn("Good, I'm satisfied") in text and bn("Bad, I'm not satisfied") in html
    links = re.findall(r"http://helpdesk\.test(/portal/rate/\S+\?score=(?:good|bad))", text)
    assert [link.rsplit("=", 1)[1] for link in links] == ["good", "bad"]

    # Following the link (what a mail scanner does) shows the choice and records nothing.
    page = client.get(links[0])
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'lang="bn"' in body and bn("Send my rating") in body
    assert "data-rate-autosubmit" in body
    assert re.search(r'<input checked [^>]*value="good"', body)
    session.expire_all()
    assert session.get(SatisfactionRating, survey.id).score is None  # type: ignore[union-attr]

    # The page's own POST records it; the thank-you page then takes a comment.
    path = links[0].split("?")[0]
    done = client.post(path, data={"csrf_token": csrf(page), "score": "good"})
    assert done.status_code == 302
    thanks = client.get(path)
    assert bn("Thank you! Your rating was recorded.") in thanks.get_data(as_text=True)
    session.expire_all()
    rated = session.get(SatisfactionRating, survey.id)
    assert rated is not None and (rated.score, rated.channel) == (satisfaction.GOOD, "email")
    client.post(
        path, data={"csrf_token": csrf(thanks), "score": "bad", "comment": "ডেলিভারি দেরিতে"}
    )
    session.expire_all()
    rated = session.get(SatisfactionRating, survey.id)
    assert rated is not None
    assert (rated.score, rated.comment) == (satisfaction.BAD, "ডেলিভারি দেরিতে")


def test_a_forged_link_is_a_404_in_the_readers_language_and_cannot_rate_another_ticket(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket, client: FlaskClient
) -> None:
    mine = resolve(session, agent, make_ticket(sender="mine@example.com").ticket)
    theirs = resolve(session, agent, make_ticket(sender="theirs@example.com").ticket)
    token = satisfaction.token_for(mine)
    for forged in (token[:-3] + "abc", "not-a-token"):
        page = client.get(f"/portal/rate/{forged}?score=good", headers={"Accept-Language": "bn"})
        assert page.status_code == 404
        assert bn("This rating link is not valid.") in page.get_data(as_text=True)
    # this survey's signature with the other survey's id: refused, the other stays unrated
    head = satisfaction.token_for(theirs).split(".")[0]
    page = client.get(f"/portal/rate/{token}")
    forged = head + "." + token.split(".", 1)[1]
    refused = client.post(f"/portal/rate/{forged}", data={"csrf_token": csrf(page), "score": "bad"})
    assert refused.status_code == 404
    session.expire_all()
    assert session.get(SatisfactionRating, theirs.id).score is None  # type: ignore[union-attr]


def test_the_portal_ticket_page_asks_a_signed_in_customer(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket, client: FlaskClient
) -> None:
    ticket = make_ticket(sender="sara@example.com").ticket
    row, _ = magic.issue(session, ticket.customer, "ticket", ticket=ticket)
    session.commit()
    path = magic.link_for(row).removeprefix("http://helpdesk.test")
    client.post(path, data={"csrf_token": csrf(client.get(path))})
    page = client.get(f"/portal/tickets/{ticket.number}")
    assert "How did we do?" not in page.get_data(as_text=True)  # not resolved: not asked
    survey = resolve(session, agent, ticket)
    page = client.get(f"/portal/tickets/{ticket.number}")
    assert "How did we do?" in page.get_data(as_text=True)
    client.post(
        f"/portal/tickets/{ticket.number}/rate",
        data={"csrf_token": csrf(page), "score": "good", "comment": "Quick, thanks"},
    )
    session.expire_all()
    rated = session.get(SatisfactionRating, survey.id)
    assert rated is not None
    assert (rated.score, rated.comment, rated.channel) == (5, "Quick, thanks", "portal")
    assert "Thank you! Your rating was recorded." in client.get(
        f"/portal/tickets/{ticket.number}"
    ).get_data(as_text=True)


def test_no_mail_once_answered_or_after_the_customer_was_erased(
    app: Flask,
    session: Session,
    agent: Agent,
    admin: Agent,
    make_ticket: MakeTicket,
    smtp_sink: SmtpSink,
) -> None:
    answered = resolve(session, agent, make_ticket(sender="quick@example.com").ticket)
    satisfaction.rate(session, answered, "good", None, channel="portal")  # before the mail left
    erased = make_ticket(sender="gone@example.com").ticket
    resolve(session, agent, erased)
    customer_privacy.erase_customer(session, erased.customer, admin)
    session.commit()
    outbox.drain(app)
    rows = session.scalars(
        select(OutboundMail).where(OutboundMail.purpose == satisfaction.REQUEST_MAIL)
    ).all()
    assert [(r.recipient, r.status) for r in rows] == [
        ("quick@example.com", DeliveryStatus.FAILED)
    ]  # the erased customer's queued mail went with them
    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=1)


def test_a_five_point_survey_has_five_links_and_the_page_takes_a_score(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket, client: FlaskClient
) -> None:
    app.config["SATISFACTION_SCALE"] = "five"
    survey = resolve(session, agent, make_ticket(sender="five@example.com").ticket)
    row = session.scalars(
        select(OutboundMail).where(OutboundMail.purpose == satisfaction.REQUEST_MAIL)
    ).one()
    prepared = compose_satisfaction_request(app, session, row)
    text = prepared.mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    links = re.findall(r"http://helpdesk\.test(/portal/rate/\S+\?score=(\d))", text)
    assert [score for _link, score in links] == ["5", "4", "3", "2", "1"]
    assert "3 – Okay" in text
    page = client.get(links[2][0])
    assert re.search(r'<input checked [^>]*value="3"', page.get_data(as_text=True))
    path = links[2][0].split("?")[0]
    client.post(path, data={"csrf_token": csrf(page), "score": "3"})
    session.expire_all()
    assert session.get(SatisfactionRating, survey.id).score == 3  # type: ignore[union-attr]
    refused = client.post(path, data={"csrf_token": csrf(page), "score": "good"})
    assert refused.status_code == 400


def test_the_rating_page_is_rate_limited_like_the_portals_forms(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket, client: FlaskClient
) -> None:
    app.config["RATELIMIT_PORTAL"] = "3 per hour"
    survey = resolve(session, agent, make_ticket().ticket)
    path = f"/portal/rate/{satisfaction.token_for(survey)}"
    token = csrf(client.get(path))
    answers = [
        client.post(path, data={"csrf_token": token, "score": score}).status_code
        for score in ("good", "bad", "good", "bad")
    ]
    assert answers == [302] * 3 + [429]
