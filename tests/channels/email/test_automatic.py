"""Automatic mail (out-of-office replies, newsletters, delivery reports) that continues no
conversation is held for the admin instead of opening a ticket; automatic mail on a
conversation joins its ticket without reopening or answering it. Fetched from a real Dovecot."""

from __future__ import annotations

from datetime import date

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email import services as mail_services
from channels.email.imap import fetch_once
from channels.email.ingest import process_mail
from channels.email.models import QuarantinedMail
from helpdesk.models import Agent, Customer, Direction, Message, MessageKind, Ticket, TicketStatus
from helpdesk.services import tickets
from tests.channels.email.conftest import Mailbox, MakeChannel, make_mail
from tests.conftest import PASSWORD, csrf_token, login

# Gmail's vacation responder: RFC 3834 headers, no In-Reply-To (it answers a mail we never
# stored, e.g. a Cc of someone else's).
OOO_STRANGER = make_mail(
    "Lina Roy <lina@partner.example>",
    "Out of Office: back on Monday",
    "I am away until Monday.",
    message_id="ooo-stranger@partner.example",
    headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
)
# An auto-responder that only says so in its Bengali subject.
OOO_BENGALI = make_mail(
    "করিম <karim@dhaka.example>",
    "স্বয়ংক্রিয় উত্তর: আমি ছুটিতে আছি",
    "আমি রবিবার পর্যন্ত ছুটিতে আছি।",
    message_id="ooo-bn@dhaka.example",
)
NEWSLETTER = make_mail(
    "Deals Weekly <news@deals.example>",
    "This week's deals",
    "20% off everything.",
    message_id="deals-1@deals.example",
    headers={"List-Id": "Deals <deals.lists.example>", "Precedence": "bulk"},
)
CUSTOMER = make_mail(
    "Rahim <rahim@example.com>", "Order 1234 missing", "Where is it?", message_id="c1@example.com"
)
# Rahim Cc'd a colleague, whose out-of-office answers his mail: it continues his ticket.
OOO_ON_TICKET = make_mail(
    "Nadia <nadia@example.com>",
    "Automatic reply: Order 1234 missing",
    "Away this week.",
    message_id="ooo-nadia@example.com",
    in_reply_to="c1@example.com",
    headers={"Auto-Submitted": "auto-replied"},
)


def _customers(session: Session) -> set[str]:
    return {str(c.email) for c in session.scalars(select(Customer))}


def test_automatic_mail_of_no_conversation_is_held_not_queued_and_an_admin_can_open_it(
    app: Flask,
    session: Session,
    mailbox: Mailbox,
    make_channel: MakeChannel,
    admin: Agent,
) -> None:
    channel = make_channel(acknowledge=True)
    fetch_once(app, channel.id)  # the checkpoint: mail from now on
    mailbox.append(OOO_STRANGER, CUSTOMER, OOO_BENGALI, NEWSLETTER, OOO_ON_TICKET)
    result = fetch_once(app, channel.id)

    # One ticket: Rahim's. The out-of-office replies and the newsletter are held, and their
    # senders are not made customers.
    assert (result.fetched, result.created, result.held, result.quarantined) == (5, 1, 3, 0)
    assert result.redone_batches == 0
    only = session.scalars(select(Ticket)).one()
    assert only.subject == "Order 1234 missing"
    assert _customers(session) == {"rahim@example.com", "nadia@example.com"}
    # Nadia's out-of-office joined Rahim's ticket as a system message: no new ticket, no
    # status change, no acknowledgement to her (only Rahim's one).
    ooo = session.scalar(select(Message).where(Message.message_id == "ooo-nadia@example.com"))
    assert ooo is not None and ooo.ticket_id == only.id and ooo.kind == MessageKind.SYSTEM
    outbound = session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND))
    assert [m.recipients for m in outbound] == [["rahim@example.com"]]
    held = {
        item.error: item
        for item in session.scalars(select(QuarantinedMail).order_by(QuarantinedMail.id))
    }
    assert set(held) == {"auto-submitted", "subject", "precedence-bulk"}
    assert {item.reason for item in held.values()} == {mail_services.AUTOMATIC}

    # Fetched again (a backfill): held once, stored once.
    session.commit()
    again = fetch_once(app, channel.id, since=date(2000, 1, 1))
    assert (again.fetched, again.created, again.duplicates) == (5, 0, 2)
    assert session.scalar(select(func.count()).select_from(QuarantinedMail)) == 3

    # The admin sees them as automatic mail, not as mail waiting for a fix ...
    client = app.test_client()
    login(client, admin.email, PASSWORD)
    assert "Quarantine (0 waiting)" in client.get("/admin/channels").get_data(as_text=True)
    page = client.get("/admin/quarantine").get_data(as_text=True)
    assert page.count('data-reason="automatic"') == 3 and "Open a ticket" in page
    # ... and opens a ticket from the one that was a person's mail after all.
    token = csrf_token(client, "/admin/quarantine")
    item = held["subject"]
    response = client.post(f"/admin/quarantine/{item.id}/replay", data={"csrf_token": token})
    assert response.status_code == 302
    session.expire_all()
    opened = session.scalar(select(Ticket).where(Ticket.subject.startswith("স্বয়ংক্রিয়")))
    assert opened is not None and opened.customer.email == "karim@dhaka.example"
    first = session.scalars(select(Message).where(Message.ticket_id == opened.id)).first()
    assert (
        first is not None
        and first.kind == MessageKind.EMAIL
        and first.direction == Direction.INBOUND
    )
    assert session.get(QuarantinedMail, item.id).replayed_at is not None  # type: ignore[union-attr]


def test_automatic_mail_on_a_pending_ticket_leaves_it_pending(
    app: Flask, session: Session, mailbox: Mailbox, make_channel: MakeChannel, agent: Agent
) -> None:
    channel = make_channel()
    fetch_once(app, channel.id)
    mailbox.append(CUSTOMER)
    fetch_once(app, channel.id)
    ticket = session.scalars(select(Ticket)).one()
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    session.commit()

    mailbox.append(OOO_ON_TICKET)
    result = fetch_once(app, channel.id)
    assert (result.created, result.held) == (0, 0)
    session.expire_all()
    assert ticket.status == TicketStatus.PENDING and ticket.message_count == 2


def test_one_mail_at_a_time_holds_automatic_mail_too(
    app_with_ctx: Flask, session: Session, make_channel: MakeChannel
) -> None:
    """The per-mail path (a failed batch's fallback, a replay) decides as the batch does."""
    channel = make_channel()
    result = process_mail(session, OOO_STRANGER, channel)
    assert result.message is None and result.held
    result = process_mail(session, OOO_STRANGER, channel)  # the same mail: held once
    session.commit()
    assert session.scalar(select(func.count()).select_from(QuarantinedMail)) == 1
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert _customers(session) == set()
