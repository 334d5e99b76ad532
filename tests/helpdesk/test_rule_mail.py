"""A rule's mail through the real outbox and SMTP sink: a time rule's reminder reaches a Bengali
customer once, in Bengali, threaded on the ticket (an answer continues it); a trigger's mail to
the assignee names the rule and links the ticket."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.inbound import InboundMessage
from helpdesk.models import Agent, Ticket, TicketStatus
from helpdesk.services import outbox, rules, stream, tickets
from helpdesk.services.inbound import receive
from tests.conftest import MakeTicket, bn
from tests.servers import SmtpSink

pytestmark = pytest.mark.usefixtures("db_backend")


@pytest.fixture
def app_config(smtp_sink: SmtpSink) -> dict[str, Any]:
    return {
        "SMTP_HOST": smtp_sink.host,
        "SMTP_PORT": smtp_sink.port,
        "OUTBOX_BACKOFF_BASE_SECONDS": 0.0,
    }


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)


def text_of(mail: EmailMessage) -> str:
    return str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def run_rules(session: Session) -> None:
    """What the worker's rules consumer does after a commit."""
    session.commit()
    while stream.consume(session, rules.CONSUMER, rules.on_event):
        session.commit()
    session.commit()


REMINDER = {
    "type": "send_email",
    "value": {
        "to": "customer",
        "subject": {"en": "Still need help?", "bn": "এখনো সাহায্য দরকার?"},
        "body": {
            "en": "Hello {{ customer.name }}, we are waiting for your answer.",
            "bn": "নমস্কার {{ customer.name }}, আমরা আপনার উত্তরের অপেক্ষায় আছি।",
        },
    },
}


def test_a_time_rules_reminder_reaches_the_bengali_customer_once(
    app: Flask, session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket,
    smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    rules.create_rule(
        session,
        admin,
        name="Pending 3 days: remind",
        kind="time",
        after_hours=72,
        conditions_=[{"field": "status", "op": "is", "value": "pending"}],
        actions=[REMINDER],
    )
    received = make_ticket(
        sender="rahim@example.com",
        subject="অর্ডার কোথায়?",
        text="আমার অর্ডার",
        language="bn",
        message_id="order-1@example.com",
    )
    ticket = received.ticket
    ticket.customer.name = "রহিম"
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    session.commit()
    session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id)
        .values(updated_at=utcnow() - timedelta(hours=73))
    )
    session.commit()

    assert rules.run_time_rules(app) == 1  # the worker's task
    assert rules.run_time_rules(app) == 0  # its next tick: nothing new
    assert outbox.drain(app) == 1
    (got,) = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ("rahim@example.com",)
    mail = parse(got.data)
    assert str(mail["Subject"]) == f"[#{ticket.number}] এখনো সাহায্য দরকার?"
    # Threaded on the ticket like a reply: on the customer's own mail.
    first = received.message.message_id
    assert mail["In-Reply-To"] == f"<{first}>" and f"<{first}>" in mail["References"]
    text = text_of(mail)
    assert "নমস্কার রহিম, আমরা আপনার উত্তরের অপেক্ষায় আছি।" in text
    about = bn(
        "This message is about your ticket %(number)s (%(subject)s). To answer, reply to this mail."
    ) % {"number": f"#{ticket.number}", "subject": "অর্ডার কোথায়?"}
    assert about in text
    assert "রহিম" in mail.get_body(("html",)).get_content()  # type: ignore[union-attr]

    # Once: later rounds of the worker send nothing more.
    assert rules.run_time_rules(app) == 0
    assert outbox.drain(app) == 0
    assert len(smtp_sink.messages) == 1

    # The customer's answer to it continues the same ticket.
    answer = receive(
        session,
        InboundMessage(
            channel_kind="email",
            identity_kind="email",
            sender_address="rahim@example.com",
            subject=f"Re: {mail['Subject']}",
            text="এখনো অপেক্ষা করছি",
            message_id="answer-1@example.com",
            in_reply_to=str(mail["Message-ID"]).strip("<>"),
            references=[first or "", str(mail["Message-ID"]).strip("<>")],
        ),
    )
    session.commit()
    assert answer.ticket.id == ticket.id


def test_a_triggers_mail_to_the_assignee_names_the_rule(
    app: Flask, session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket,
    smtp_sink: SmtpSink,
) -> None:  # fmt: skip
    stream.consume(session, rules.CONSUMER, rules.on_event, start_at_end=True)
    rules.create_rule(
        session,
        admin,
        name="Tell the assignee about urgent tickets",
        event="ticket.updated",
        conditions_=[{"field": "priority", "op": "is", "value": "urgent"}],
        actions=[
            {
                "type": "send_email",
                "value": {
                    "to": "assignee",
                    "subject": {"en": "Urgent: {{ ticket.subject }}"},
                    "body": {"en": "Please look at {{ ticket.number }} now."},
                },
            }
        ],
    )
    ticket = make_ticket(subject="Server down").ticket
    tickets.assign_ticket(session, ticket, agent, admin)
    run_rules(session)
    tickets.set_priority(session, ticket, 4, admin)
    run_rules(session)

    outbox.drain(app)
    mails = [parse(m.data) for m in smtp_sink.messages if m.rcpt_tos == (agent.email,)]
    (mail,) = [m for m in mails if "Urgent" in str(m["Subject"])]
    assert str(mail["Subject"]) == f"[#{ticket.number}] Urgent: Server down"
    text = text_of(mail)
    assert f"Please look at #{ticket.number} now." in text
    assert "sent by the rule Tell the assignee about urgent tickets" in text
    assert f"/agent/tickets/{ticket.number}" in text
