"""Customer 360: one page per person across channels, organizations, merging duplicates."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.models import Agent, Customer, CustomerIdentity, Message, Ticket, ticket_participants
from helpdesk.services import customers, tickets
from tests.conftest import AgentClient, MakeTicket


def test_customer_page_shows_every_channel(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    t1 = make_ticket(sender="fatema@example.com", sender_name="ফাতেমা", subject="by mail").ticket
    t2 = make_ticket(
        sender="fatema@example.com", subject="from the portal", channel="portal"
    ).ticket
    assert t1.customer_id == t2.customer_id
    page = agent_client.get(f"/agent/customers/{t1.customer_id}").get_data(as_text=True)
    assert "ফাতেমা" in page and "by mail" in page and "from the portal" in page
    assert "fatema@example.com" in page
    ticket_page = agent_client.get(f"/agent/tickets/{t1.number}").get_data(as_text=True)
    assert f"/agent/customers/{t1.customer_id}" in ticket_page
    found = agent_client.get("/agent/customers?q=FATEMA@").get_data(as_text=True)
    assert "ফাতেমা" in found


def test_notes_and_organization(
    agent_client: AgentClient, session: Session, ticket: Ticket
) -> None:
    response = agent_client.post(
        f"/agent/customers/{ticket.customer_id}",
        {"name": "Nadia Islam", "notes": "Prefers phone calls", "organization": "Islam Traders"},
    )
    assert response.status_code == 302
    session.expire_all()
    c = session.get(Customer, ticket.customer_id)
    assert c is not None and c.notes == "Prefers phone calls" and c.organization is not None
    page = agent_client.get(f"/agent/organizations/{c.organization.id}").get_data(as_text=True)
    assert "Islam Traders" in page and "Nadia Islam" in page and ticket.subject in page


def test_merging_two_records_of_one_person(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    by_mail = make_ticket(sender="karim@example.com", sender_name="Karim").ticket
    chat = make_ticket(sender="visitor-42", channel="chat", text="hi").ticket
    other = make_ticket(sender="boss@example.com", cc=["karim@example.com"]).ticket
    tickets.add_note(session, chat, agent, "same person as karim@example.com")
    session.commit()
    source, target = chat.customer, by_mail.customer
    source_id = source.id
    customers.merge_customers(session, source, target)
    session.commit()

    assert session.get(Customer, source_id) is None
    assert (
        session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.customer_id == target.id)
        )
        == 2
    )
    kinds = {
        i.kind.value
        for i in session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == target.id)
        )
    }
    assert kinds == {"email", "chat"}
    authored = session.scalar(
        select(func.count()).select_from(Message).where(Message.author_customer_id == target.id)
    )
    assert authored == 2
    # Still a participant of the other ticket, exactly once.
    rows = session.execute(
        select(ticket_participants).where(ticket_participants.c.ticket_id == other.id)
    ).all()
    assert [r.customer_id for r in rows] == [target.id]
    # The chat visitor id now resolves to the merged customer.
    again = make_ticket(sender="visitor-42", channel="chat", text="me again")
    assert again.ticket.customer_id == target.id


def test_merge_from_the_customer_page(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    a = make_ticket(sender="a@example.com").ticket
    b = make_ticket(sender="b@example.com").ticket
    response = agent_client.post(
        f"/agent/customers/{b.customer_id}/merge", {"target": "A@example.com"}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/{a.customer_id}"
    )
    bad = agent_client.post(
        f"/agent/customers/{a.customer_id}/merge", {"target": "nobody@example.com"}
    )
    assert bad.status_code == 400


@pytest.mark.only_on("postgresql")  # SQLite's writers queue at BEGIN: the race cannot happen
def test_two_first_contacts_from_one_address_at_once_make_one_customer(app: Flask) -> None:
    """Two mails (or API calls) from a new address committed at the same moment: both look the
    address up before either commits. The second used to fail on the identity's unique index
    (a 500, or a mail batch redone); it gets the customer the first made."""
    address = "nobody-yet@example.com"
    found: list[int] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with app.app_context(), db.transaction(app) as s2:
                found.append(customers.resolve_customer(s2, "email", address, name="B").id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with app.app_context():
        with db.transaction(app) as s1:
            first = customers.resolve_customer(s1, "email", address, name="A")
            thread = threading.Thread(target=second)
            thread.start()
            # The second transaction looked and now waits on the first's uncommitted row.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with db.engine(app).connect() as probe:
                    waiting = probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    )
                if waiting:
                    break
                time.sleep(0.01)
            assert waiting, "the second transaction never waited on the first"
        thread.join(10)
        assert not errors, errors
        assert found == [first.id]
        with db.transaction(app) as s3:
            count = s3.scalar(
                select(func.count()).select_from(CustomerIdentity).where(
                    CustomerIdentity.value == address
                )
            )
            assert count == 1
