"""Importing a team's history from another helpdesk (``POST /api/v1/imports/tickets``): every
time kept, nothing sent or triggered, numbers in the one sequence, all or nothing per request,
and the tickets found afterwards wherever tickets are looked for."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.models import (
    Agent,
    AuditEvent,
    Customer,
    Message,
    Notification,
    OutboundMail,
    Ticket,
    TicketStatus,
)
from helpdesk.services import counts, organizations, outbox, stream
from helpdesk.services.inbound import receive
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.api.test_openapi import keep_promises
from tests.conftest import AgentClient, MakeTicket
from tests.servers import SmtpSink

URL = "/api/v1/imports/tickets"


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"API_RATE_LIMIT": "100000 per minute"}
    if "smtp_sink" in request.fixturenames:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port)
    return config


@pytest.fixture
def importer(app: Flask, admin: Agent, make_token: MakeToken) -> ApiClient:
    """An admin's admin token: what an import needs."""
    return ApiClient(app, make_token(admin, "admin"))


def _ticket(n: int, **over: Any) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "external_id": f"zd-{n}",
        "subject": f"Parcel {n} has not arrived",
        "status": "resolved",
        "created_at": "2019-12-24T09:00:00+06:00",
        "customer": {"email": f"buyer{n}@example.com", "name": f"Buyer {n}"},
        "messages": [
            {
                "body": f"Where is parcel {n}?",
                "created_at": "2019-12-24T09:00:00+06:00",
                "author": "customer",
            },
            {
                "body": "It is on its way.",
                "created_at": "2019-12-24T11:30:00+06:00",
                "author": "agent",
            },
        ],
    }
    ticket.update(over)
    return ticket


def _same_instant(api_value: str, given: str) -> bool:
    return datetime.fromisoformat(api_value) == datetime.fromisoformat(given)


def test_times_status_tags_and_bengali_survive_the_import(
    importer: ApiClient, session: Session, agent: Agent
) -> None:
    bengali = {
        "external_id": "osticket-77",
        "subject": "বিকাশ পেমেন্ট ফেরত চাই",
        "status": "closed",
        "priority": 3,
        "channel": "portal",
        "language": "bn",
        "created_at": "2018-04-14T08:15:30.123456+06:00",  # Pohela Boishakh, microseconds
        "updated_at": "2018-04-16T12:00:00+06:00",
        "resolved_at": "2018-04-15T17:45:00+06:00",
        "customer": {"email": "Rahim.Uddin@Example.COM", "name": "রহিম উদ্দিন"},
        "cc": [{"email": "karim@example.com", "name": "করিম"}],
        "tags": ["Refund", "bKash"],
        "messages": [
            {
                "body": "আমার টাকা এখনও ফেরত আসেনি।",
                "created_at": "2018-04-14T08:15:30.123456+06:00",
                "author": "customer",
            },
            {
                "body": "Checked with finance: the refund is on its way.",
                "created_at": "2018-04-14T10:00:00+06:00",
                "author": "agent",
                "agent": "Agent@Example.com",
                "internal": True,
            },
            {
                "body": "আপনার টাকা ফেরত পাঠানো হয়েছে।",
                "created_at": "2018-04-15T17:40:00+06:00",
                "author": "agent",
                "agent": "agent@example.com",
            },
        ],
    }
    response = importer.post(URL, json={"tickets": [bengali, _ticket(1, tags=[])]})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body == {
        "imported": 2,
        "skipped": 0,
        "tickets": [
            {"number": 1001, "external_id": "osticket-77", "skipped": False},
            {"number": 1002, "external_id": "zd-1", "skipped": False},
        ],
    }
    got = importer.get("/api/v1/tickets/1001").get_json()
    assert got["subject"] == "বিকাশ পেমেন্ট ফেরত চাই"
    assert got["status"] == "closed" and got["priority"] == 3 and got["channel"] == "portal"
    assert got["language"] == "bn" and got["tags"] == ["bkash", "refund"]
    assert got["customer"]["name"] == "রহিম উদ্দিন"
    assert got["customer"]["email"] == "rahim.uddin@example.com"
    assert got["assignee"] is None and got["team"] is None
    assert _same_instant(got["created_at"], "2018-04-14T08:15:30.123456+06:00")
    assert _same_instant(got["updated_at"], "2018-04-16T12:00:00+06:00")
    assert _same_instant(got["resolved_at"], "2018-04-15T17:45:00+06:00")
    # The first answer the customer saw, not the internal note before it.
    assert _same_instant(got["first_response_at"], "2018-04-15T17:40:00+06:00")
    assert got["message_count"] == 3
    first, note, answer = got["messages"]
    assert first["body"] == "আমার টাকা এখনও ফেরত আসেনি।"
    assert first["author"]["type"] == "customer" and first["direction"] == "inbound"
    assert _same_instant(first["created_at"], "2018-04-14T08:15:30.123456+06:00")
    assert note["internal"] is True and note["kind"] == "note"
    assert note["author"] == {"type": "agent", "id": agent.id, "name": agent.name}
    assert answer["author"]["id"] == agent.id and answer["direction"] == "outbound"
    assert answer["delivery_status"] == "sent" and answer["kind"] == "portal"
    assert _same_instant(answer["created_at"], "2018-04-15T17:40:00+06:00")
    # The Cc'd person is a participant customer; the owner's page lists the ticket.
    ticket = session.scalar(select(Ticket).where(Ticket.number == 1001))
    assert ticket is not None and [p.email for p in ticket.participants] == ["karim@example.com"]
    assert ticket.external_id == "osticket-77"
    # The integrator finds an imported ticket by its id in the former helpdesk.
    assert got["external_id"] == "osticket-77"
    found = importer.get("/api/v1/tickets?external_id=osticket-77").get_json()["tickets"]
    assert [t["number"] for t in found] == [1001] and found[0]["external_id"] == "osticket-77"
    assert importer.get("/api/v1/tickets?external_id=zd-404").get_json()["tickets"] == []
    listed = importer.get(f"/api/v1/tickets?customer={ticket.customer_id}").get_json()
    assert [t["number"] for t in listed["tickets"]] == [1001]
    # An agent message without "agent" is the importing admin's.
    second = importer.get("/api/v1/tickets/1002").get_json()
    assert second["messages"][1]["author"]["name"] == "Ada Admin"
    # The ticket's history says where it came from.
    [entry] = session.scalars(select(AuditEvent).where(AuditEvent.ticket_id == ticket.id))
    assert entry.action == "ticket.imported" and entry.data["external_id"] == "osticket-77"


def test_nothing_is_sent_notified_assigned_or_announced(
    app: Flask, importer: ApiClient, session: Session, agent: Agent, smtp_sink: SmtpSink
) -> None:
    # An internal note that would @mention an agent if it were written here.
    note = {
        "body": "@Alex please look",
        "created_at": "2020-01-01T10:00:00Z",
        "author": "agent",
        "internal": True,
    }
    tickets = [_ticket(n, status="open") for n in range(3)]
    tickets[0]["messages"].append(note)
    with stream.capture() as recorded:
        response = importer.post(URL, json={"tickets": tickets})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert outbox.drain(app) == 0
    assert smtp_sink.messages == []
    assert session.scalar(select(func.count()).select_from(OutboundMail)) == 0
    assert session.scalar(select(func.count()).select_from(Notification)) == 0
    assert session.scalars(select(Ticket.assignee_id)).all() == [None, None, None]
    queued = select(func.count()).where(Message.delivery_status == "queued")
    assert session.scalar(queued) == 0
    # One event for the request, none per ticket, message or customer.
    [event] = recorded.events
    assert event.name == "tickets.imported"
    assert event.data == {
        "count": 3,
        "first_number": 1001,
        "last_number": 1003,
        "skipped": 0,
        "customers_created": 3,
    }


def test_numbers_continue_the_sequence_and_never_clash_with_live_tickets(
    app: Flask, importer: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    assert make_ticket(sender="live@example.com").ticket.number == 1001
    body = importer.post(URL, json={"tickets": [_ticket(n) for n in range(3)]}).get_json()
    assert [t["number"] for t in body["tickets"]] == [1002, 1003, 1004]
    assert make_ticket(sender="live@example.com").ticket.number == 1005


def test_a_live_ticket_opened_during_an_import_gets_the_next_free_number(
    app: Flask, admin: Agent, session: Session
) -> None:
    """The import holds the counter until it commits; a mail arriving meanwhile waits for it
    (PostgreSQL's row lock, SQLite's write lock) and takes the number after the import's."""
    from helpdesk.services import imports

    parsed = imports.parse_tickets([_ticket(n) for n in range(5)])
    imports.import_tickets(session, admin, parsed)
    numbers: list[int] = []

    def live() -> None:
        with db.transaction(app) as other:
            msg = InboundMessage(
                channel_kind="email",
                identity_kind="email",
                sender_address="live@example.com",
                subject="Live",
                text="Hello",
            )
            numbers.append(receive(other, msg).ticket.number)

    thread = threading.Thread(target=live)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting for the import's transaction
    session.commit()
    thread.join(30)
    assert numbers == [1006]
    assert sorted(session.scalars(select(Ticket.number))) == list(range(1001, 1007))


def test_a_bad_ticket_fails_the_request_and_nothing_is_imported(
    importer: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    tickets = [_ticket(n) for n in range(4)]
    tickets[3]["messages"][0]["created_at"] = "2019-12-24T09:00:00"  # no time zone
    tickets[1]["customer"]["email"] = "not an address"
    response = importer.post(URL, json={"tickets": tickets})
    error = error_of(response, 422)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"tickets.3.messages.0.created_at", "tickets.1.customer.email"}
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    # No number was used up.
    assert make_ticket().ticket.number == 1001


def test_an_unknown_agent_fails_the_request(importer: ApiClient, session: Session) -> None:
    tickets = [_ticket(0), _ticket(1)]
    tickets[1]["messages"][1]["agent"] = "left.the.company@example.com"
    tickets[1]["messages"].reverse()  # not in time order: named by its place in the request
    error = error_of(importer.post(URL, json={"tickets": tickets}), 422)
    assert error["code"] == "unknown_agent"
    assert list(error["fields"]) == ["tickets.1.messages.0.agent"]
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_bengali_error_messages(importer: ApiClient) -> None:
    response = importer.post(
        URL,
        json={"tickets": [_ticket(0, created_at="yesterday")]},
        headers={"Accept-Language": "bn"},
    )
    error = error_of(response, 422)
    assert error["fields"]["tickets.0.created_at"].isascii() is False


def test_too_many_tickets_or_messages_are_refused_with_their_own_codes(
    importer: ApiClient, session: Session
) -> None:
    tickets = [_ticket(n) for n in range(1001)]
    error = error_of(importer.post(URL, json={"tickets": tickets}), 422)
    assert error["code"] == "too_many_tickets"
    # A request holds SQLite's write lock while it writes: its size in messages is capped too.
    message = {"body": "Hi", "created_at": "2020-01-01T10:00:00Z", "author": "customer"}
    tickets = [_ticket(n, messages=[message] * 201) for n in range(100)]
    error = error_of(importer.post(URL, json={"tickets": tickets}), 422)
    assert error["code"] == "too_many_messages"
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_retry_with_the_same_key_replays_the_answer(
    importer: ApiClient, session: Session
) -> None:
    payload = {"tickets": [_ticket(n) for n in range(2)]}
    headers = {"Idempotency-Key": "import-batch-1"}
    first = importer.post(URL, json=payload, headers=headers)
    again = importer.post(URL, json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_running_an_import_again_skips_what_it_brought_over(
    importer: ApiClient, session: Session
) -> None:
    first = importer.post(URL, json={"tickets": [_ticket(0), _ticket(1)]}).get_json()
    again = importer.post(URL, json={"tickets": [_ticket(1), _ticket(2), _ticket(0)]})
    assert again.status_code == 201
    assert again.get_json() == {
        "imported": 1,
        "skipped": 2,
        "tickets": [
            {"number": first["tickets"][1]["number"], "external_id": "zd-1", "skipped": True},
            {"number": 1003, "external_id": "zd-2", "skipped": False},
            {"number": first["tickets"][0]["number"], "external_id": "zd-0", "skipped": True},
        ],
    }
    assert session.scalar(select(func.count()).select_from(Ticket)) == 3
    # The same external_id twice in one request is a mistake in the export.
    error = error_of(importer.post(URL, json={"tickets": [_ticket(5), _ticket(5)]}), 422)
    assert list(error["fields"]) == ["tickets.1.external_id"]


def test_one_customer_per_address_in_the_request_and_already_stored(
    importer: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    stored = make_ticket(sender="known@example.com").ticket.customer_id
    tickets = [
        _ticket(0, customer={"email": "KNOWN@example.com", "name": "Known"}),
        _ticket(1, customer={"email": "new@example.com", "name": "নতুন"}),
        _ticket(2, customer={"email": "New@Example.com"}, cc=[{"email": "known@example.com"}]),
    ]
    assert importer.post(URL, json={"tickets": tickets}).status_code == 201
    owners = session.execute(select(Ticket.number, Ticket.customer_id).order_by(Ticket.number))
    by_number = {number: customer for number, customer in owners}
    assert by_number[1002] == stored
    assert by_number[1003] == by_number[1004] != stored
    assert session.scalar(select(func.count()).select_from(Customer)) == 2
    newcomer = session.get(Customer, by_number[1003])
    assert newcomer is not None and newcomer.name == "নতুন"


def test_new_customers_join_the_organization_of_their_domain(
    importer: ApiClient, session: Session
) -> None:
    """As on every channel: a customer the import creates from an address at an
    organization's domain belongs to it (the organization page lists them at once)."""
    acme = organizations.create_organization(session, "Acme", domains=["acme.com.bd"])
    session.commit()
    tickets = [
        _ticket(0, customer={"email": "rina@ACME.com.bd", "name": "রিনা"}),
        _ticket(1, customer={"email": "solo@example.org"}),
    ]
    assert importer.post(URL, json={"tickets": tickets}).status_code == 201
    session.expire_all()
    rina = session.scalar(select(Customer).where(Customer.email == "rina@acme.com.bd"))
    solo = session.scalar(select(Customer).where(Customer.email == "solo@example.org"))
    assert rina is not None and rina.organization_id == acme.id
    assert solo is not None and solo.organization_id is None


def test_imported_tickets_are_found_by_search_queue_and_counts(
    importer: ApiClient, session: Session, admin: Agent
) -> None:
    tickets = [
        _ticket(0, status="open", subject="Refund for the blender"),
        _ticket(1, status="pending"),
        _ticket(
            2,
            messages=[
                {
                    "body": "পাসওয়ার্ড রিসেট হচ্ছে না",
                    "created_at": "2021-02-21T10:00:00+06:00",
                    "author": "customer",
                }
            ],
        ),
    ]
    assert importer.post(URL, json={"tickets": tickets}).status_code == 201
    found = importer.get("/api/v1/tickets?q=blender").get_json()
    assert [t["number"] for t in found["tickets"]] == [1001]
    found = importer.get("/api/v1/tickets?q=পাসওয়ার্ডের").get_json()
    assert [t["number"] for t in found["tickets"]] == [1003]
    found = importer.get("/api/v1/tickets?q=buyer1").get_json()  # the customer's name
    assert [t["number"] for t in found["tickets"]] == [1002]
    queue = importer.get("/api/v1/tickets?sort=updated").get_json()
    assert sorted(t["number"] for t in queue["tickets"]) == [1001, 1002, 1003]
    pending = importer.get("/api/v1/tickets?status=pending").get_json()
    assert [t["number"] for t in pending["tickets"]] == [1002]
    assert counts.builtin_counts(session, admin.id) == {
        "mine": 0,
        "unassigned": 2,
        "open": 2,
        "pending": 1,
        "resolved": 1,
        "all": 3,
    }
    assert session.scalar(select(Ticket.active).where(Ticket.number == 1003)) is False
    assert session.scalar(select(Ticket.status).where(Ticket.number == 1003)) == (
        TicketStatus.RESOLVED
    )


def test_only_an_admin_token_of_an_admin_may_import(
    app: Flask, agent: Agent, admin: Agent, make_token: MakeToken, session: Session
) -> None:
    payload = {"tickets": [_ticket(0)]}
    for client in (
        ApiClient(app, make_token(admin, "read")),
        ApiClient(app, make_token(admin, "write")),
        ApiClient(app, make_token(agent, "write")),
    ):
        assert error_of(client.post(URL, json=payload), 403)["code"] == "forbidden"
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_the_operation_keeps_the_documents_promises(
    app: Flask, admin: Agent, agent: Agent, make_token: MakeToken
) -> None:
    secret = make_token(admin, "admin")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations()) if op.path == URL
    ]
    assert len(operations) == 1
    runs = [(op, mode, {}) for op, mode in itertools.product(operations, GenerationMode)]
    keep_promises(runs, secret, max_examples=15)


def test_rows_written_through_the_driver_read_like_the_orms(
    importer: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    """The import bypasses the column types' processing: its raw values must be what the ORM
    stores (SQLite compares times as text: a keyset cursor over both must order them alike)."""
    when = "2020-03-01T12:00:00+06:00"
    live = make_ticket(sender="live@example.com").ticket
    live.created_at = live.updated_at = datetime.fromisoformat(when)
    session.commit()
    assert (
        importer.post(
            URL, json={"tickets": [_ticket(0, created_at=when, status="new")]}
        ).status_code
        == 201
    )
    raw = text(
        "SELECT created_at, active, status, channel, typeof(created_at) FROM tickets"
        " ORDER BY number"
        if session.get_bind().dialect.name == "sqlite"
        else "SELECT created_at, active, status, channel, 1 FROM tickets ORDER BY number"
    )
    made_here, imported = session.execute(raw).all()
    assert tuple(imported) == tuple(made_here)
    messages = text(
        'SELECT "references", recipients, direction, internal FROM messages ORDER BY id'
    )
    orm_message, imported_message, _answer = session.execute(messages).all()
    assert tuple(imported_message) == tuple(orm_message)


def test_a_customer_stored_meanwhile_by_live_mail_is_not_created_twice(
    app: Flask, admin: Agent, session: Session
) -> None:
    """A mail from an address the import is about to create, committed while the import
    runs: the import waits for it (PostgreSQL's unique index, SQLite's write lock), then uses
    that customer (on PostgreSQL by redoing its savepoint) instead of failing or duplicating."""
    from helpdesk.services import imports

    parsed = imports.parse_tickets([_ticket(0, customer={"email": "race@example.com"})])
    stored = threading.Event()
    numbers: list[int] = []

    def live() -> None:
        with db.transaction(app) as other:
            msg = InboundMessage(
                channel_kind="email",
                identity_kind="email",
                sender_address="race@example.com",
                sender_name="Live Mail",
                subject="Live",
                text="Hello",
            )
            numbers.append(receive(other, msg).ticket.number)
            other.flush()
            stored.set()
            time.sleep(1.0)  # the import looks the address up meanwhile (PostgreSQL)

    thread = threading.Thread(target=live)
    thread.start()
    assert stored.wait(30)
    result = imports.import_tickets(session, admin, parsed)
    session.commit()
    thread.join(30)
    assert session.scalar(select(func.count()).select_from(Customer)) == 1
    assert sorted(session.scalars(select(Ticket.number))) == [1001, 1002]
    assert numbers == [1001] and [t.number for t in result.tickets] == [1002]
    assert session.scalar(select(Customer.name)) == "Live Mail"


def test_the_agents_pages_show_the_imported_conversation_and_its_history(
    importer: ApiClient, agent_client: AgentClient
) -> None:
    ticket = _ticket(0, status="open", subject="বিকাশ পেমেন্ট ফেরত চাই")
    ticket["messages"][0]["body"] = "আমার টাকা এখনও ফেরত আসেনি।"
    assert importer.post(URL, json={"tickets": [ticket]}).status_code == 201
    queue = agent_client.get("/agent/queue?view=all").get_data(as_text=True)
    assert "বিকাশ পেমেন্ট ফেরত চাই" in queue
    page = agent_client.get("/agent/tickets/1001").get_data(as_text=True)
    assert "আমার টাকা এখনও ফেরত আসেনি।" in page and "It is on its way." in page
    assert "imported this ticket from another helpdesk (its id there: zd-0)" in page
