"""The durable event stream: the exact events of a change, none after a rollback, consumers that
resume by id (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat, visitor_chat
from channels.chat.lines import visitor_message
from channels.chat.routing import accept
from channels.chat.tokens import new_visitor
from helpdesk.db import read_only_transactions
from helpdesk.extensions import db
from helpdesk.models import Agent, Event, Ticket, TicketStatus
from helpdesk.services import bulk, stream, tags, ticket_merge, tickets
from helpdesk.services.bulk import BulkChange
from helpdesk.services.effects import on_commit
from helpdesk.services.presence import agent_connected, set_presence
from helpdesk.services.stream import StoredEvent, StreamRecorder
from tests.conftest import MakeTicket


@pytest.fixture
def committed() -> Iterator[StreamRecorder]:
    with stream.capture() as recorder:
        yield recorder


def _shape(events: list[StoredEvent]) -> list[tuple[str, str, int | None, str]]:
    return [(e.name, e.subject_type, e.actor_id, e.actor_type) for e in events]


def _ids_follow(events: list[StoredEvent]) -> None:
    ids = [e.id for e in events]
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids


def test_a_reply_records_its_message_and_the_status_it_changed(
    session: Session, agent: Agent, make_ticket: MakeTicket, committed: StreamRecorder
) -> None:
    ticket = make_ticket(subject="Refund for order 1042").ticket
    opened = committed.names()
    assert opened == ["customer.created", "ticket.created", "message.created"]
    committed.clear()

    message = tickets.reply_to_ticket(session, ticket, agent, "We have sent the refund.")
    assert committed.events == []  # nothing before the commit
    session.commit()

    assert _shape(committed.events) == [
        ("message.created", "message", agent.id, "agent"),
        ("ticket.updated", "ticket", agent.id, "agent"),
    ]
    created, updated = committed.events
    assert created.subject_id == message.id and created.ticket_id == ticket.id
    assert created.data == {
        "direction": "outbound",
        "kind": "email",
        "internal": False,
        "attachments": 0,
    }
    assert updated.data == {"changes": {"status": {"from": "new", "to": "open"}}}
    _ids_follow(committed.events)
    # The rows say the same, readable by anyone polling after the last id they saw.
    rows = stream.read(session, after=created.id - 1)
    assert [r.as_dict() for r in rows] == [e.as_dict() for e in committed.events]
    assert rows[0].as_dict()["actor"] == {"type": "agent", "id": agent.id}


def test_changes_of_one_transaction_are_one_ticket_updated_and_a_change_back_is_none(
    session: Session, agent: Agent, make_ticket: MakeTicket, committed: StreamRecorder
) -> None:
    ticket = make_ticket().ticket
    committed.clear()
    tickets.set_priority(session, ticket, 3, agent)
    tickets.set_status(session, ticket, "pending", agent)
    tickets.set_priority(session, ticket, 4, agent)
    tags.set_tags(session, ticket, ["vip", "billing"], agent)
    session.commit()
    assert committed.names() == ["ticket.updated"]
    assert committed.events[0].data["changes"] == {
        "priority": {"from": 2, "to": 4},
        "status": {"from": "new", "to": "pending"},
        "tags": {"from": [], "to": ["billing", "vip"]},
    }
    committed.clear()
    tickets.set_priority(session, ticket, 1, agent)
    tickets.set_priority(session, ticket, 4, agent)
    session.commit()
    assert committed.events == []


def test_a_merge_records_what_moved(
    session: Session, agent: Agent, make_ticket: MakeTicket, committed: StreamRecorder
) -> None:
    source = make_ticket(sender="rahim@example.com", subject="Card blocked").ticket
    target = make_ticket(sender="rahim@example.com", subject="Card still blocked").ticket
    committed.clear()
    ticket_merge.merge_tickets(session, source, target, agent)
    session.commit()

    assert [(e.name, e.subject_id) for e in committed.events] == [
        ("ticket.updated", source.id),
        ("ticket.merged", source.id),
        ("message.created", committed.events[2].subject_id),  # "Merged into ..." on the source
    ]
    update, merged, note = committed.events
    assert update.data == {
        "changes": {
            "merged_into_id": {"from": None, "to": target.id},
            "status": {"from": "new", "to": "closed"},
        }
    }
    assert merged.data == {"into_ticket_id": target.id, "messages": 1}
    assert merged.actor_type == "agent" and merged.actor_id == agent.id
    assert note.ticket_id == source.id and note.actor_type == "system"
    _ids_follow(committed.events)


def test_a_bulk_update_of_100_tickets_records_one_update_each(
    session: Session, agent: Agent, make_ticket: MakeTicket, committed: StreamRecorder
) -> None:
    ids = [make_ticket(sender=f"c{i}@example.com", commit=False).ticket.id for i in range(100)]
    session.commit()
    committed.clear()
    bulk.bulk_update(
        session,
        ids,
        BulkChange(assignee_id=agent.id, status=TicketStatus.PENDING, add_tags=("q4",)),
        agent,
    )
    session.commit()

    assert committed.names() == ["ticket.updated"] * 100
    assert [e.subject_id for e in committed.events] == sorted(ids)
    for e in committed.events:
        assert e.data["changes"] == {
            "assignee_id": {"from": None, "to": agent.id},
            "status": {"from": "new", "to": "pending"},
            "tags": {"from": [], "to": ["q4"]},
        }
    _ids_follow(committed.events)


def test_a_chat_line_records_one_message_created(
    app: Flask, session: Session, agent: Agent, committed: StreamRecorder
) -> None:
    agent_connected(session, agent, "sid-stream")
    set_presence(session, agent, "online")
    visitor, _token = new_visitor()
    started = start_chat(session, visitor_id=visitor, text="Hi", client_id=uuid.uuid4().hex)
    accept(session, started, agent)
    session.commit()
    ticket_id = started.ticket_id
    session.rollback()
    committed.clear()

    with app.app_context():
        s = db.session
        found = visitor_chat(s, visitor, ticket_id)
        text = "আমার কার্ড কাজ করছে না"
        received = visitor_message(s, found, text=text, client_id=uuid.uuid4().hex)
        s.commit()
        message_id = received.message.id

    assert len(committed.events) == 1
    (line,) = committed.events
    assert (line.name, line.subject_id, line.ticket_id, line.actor_type) == (
        "message.created",
        message_id,
        ticket_id,
        "customer",
    )
    assert line.data["kind"] == "chat" and line.data["direction"] == "inbound"


def test_nothing_is_recorded_by_a_rollback_or_a_rolled_back_savepoint(
    session: Session, agent: Agent, make_ticket: MakeTicket, committed: StreamRecorder
) -> None:
    ticket = make_ticket().ticket
    before = stream.last_id(session)
    count = session.scalar(select(func.count()).select_from(Event))
    committed.clear()

    tickets.reply_to_ticket(session, ticket, agent, "never sent")
    tickets.set_priority(session, ticket, 4, agent)
    session.rollback()
    assert committed.events == []
    assert session.scalar(select(func.count()).select_from(Event)) == count

    again = session.get(Ticket, ticket.id)
    assert again is not None
    tickets.add_note(session, again, agent, "kept")
    with session.begin_nested() as nested:
        tickets.set_priority(session, again, 4, agent)
        nested.rollback()
    session.commit()
    assert committed.names() == ["message.created"]
    # Ids stay gap-free: the rolled-back transaction gave its ids back.
    assert committed.events[0].id == before + 1


def test_a_consumer_stopped_mid_stream_resumes_and_gets_each_event_once(
    app: Flask, session: Session, make_ticket: MakeTicket
) -> None:
    for i in range(30):
        make_ticket(sender=f"c{i}@example.com", commit=False)
    session.commit()
    expected = [e.id for e in stream.read(session, 0, 10_000)]
    assert len(expected) == 90  # customer, ticket, message for each
    session.rollback()

    delivered: list[int] = []  # what the consumer's effects saw, after each commit
    crash_at = expected[45]

    def handler(s: Session, event: StoredEvent) -> None:
        if event.id == crash_at and not crashed.is_set():
            crashed.set()
            raise RuntimeError("consumer process dies here")
        on_commit(s, lambda: delivered.append(event.id))

    crashed = threading.Event()
    # Batches of 20: two commit, the third dies half-way and is rolled back.
    for _ in range(3):
        try:
            with app.app_context(), db.transaction(app) as s:
                stream.consume(s, "test-consumer", handler, limit=20)
        except RuntimeError:
            break
    assert delivered == expected[:40]
    with app.app_context(), db.transaction(app) as s:
        assert stream.position(s, "test-consumer") == expected[39]

    # Restarted: it goes on from its position until caught up.
    while True:
        with app.app_context(), db.transaction(app) as s:
            if not stream.consume(s, "test-consumer", handler, limit=20):
                break
    assert delivered == expected


def test_the_worker_keeps_registered_consumers_up_to_date(
    app: Flask, session: Session, make_ticket: MakeTicket
) -> None:
    from helpdesk import worker

    seen: list[str] = []
    stream.register_consumer("test-worker", lambda _s, e: seen.append(e.name), start_at_end=True)
    try:
        make_ticket()  # before the consumer ever ran: skipped (start_at_end)
        worker.run_once(app)
        assert seen == []
        make_ticket(sender="new@example.com")
        worker.run_once(app)
        assert seen == ["customer.created", "ticket.created", "message.created"]
    finally:
        stream.unregister_consumer("test-worker")


def test_ids_follow_commit_order_under_concurrent_writers(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    """A reader that polls ``after=<last id>`` while four writers commit never skips an event:
    ids are handed out at commit time under the counter's lock."""
    ticket_ids = [make_ticket(sender=f"w{i}@example.com").ticket.id for i in range(4)]
    agent_id = agent.id
    session.rollback()
    start = stream.last_id(session)
    session.rollback()
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(ticket_id: int) -> None:
        try:
            for n in range(15):
                with app.app_context(), db.transaction(app) as s:
                    t = s.get(Ticket, ticket_id)
                    a = s.get(Agent, agent_id)
                    assert t is not None and a is not None
                    tickets.add_note(s, t, a, f"note {n}")
        except BaseException as exc:
            errors.append(exc)

    seen: list[int] = []

    def reader() -> None:
        last = start
        while True:
            finished = done.is_set()
            with app.app_context(), read_only_transactions(), db.transaction(app) as s:
                batch = stream.read(s, last, 1000)
            for event in batch:
                seen.append(event.id)
                last = event.id
            if finished and not batch:
                return

    threads = [threading.Thread(target=writer, args=(t,)) for t in ticket_ids]
    poller = threading.Thread(target=reader)
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    poller.join()
    assert errors == []
    assert seen == list(range(start + 1, start + 1 + 60))


def test_event_payloads_survive_bengali_and_json(
    session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    from helpdesk.services.customers import update_customer

    ticket = make_ticket(sender="nasrin@example.com").ticket
    update_customer(session, ticket.customer, name="নাসরিন আক্তার", organization="বিকাশ", actor=agent)
    session.commit()
    names: dict[str, Any] = {e.name: e for e in stream.read(session, 0, 100)}
    org = names["organization.created"]
    assert org.data == {"name": "বিকাশ", "domains": []}
    changes = names["customer.updated"].data["changes"]
    assert changes["name"]["to"] == "নাসরিন আক্তার"
    assert changes["organization_id"] == {"from": None, "to": org.subject_id}


def test_events_tail_prints_the_stream_for_a_person_and_a_script(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket(subject="প্যাকেট পৌঁছায়নি").ticket
    tickets.set_priority(session, ticket, 4, agent)
    session.commit()
    session.rollback()
    runner = app.test_cli_runner()

    lines = runner.invoke(args=["events", "tail", "--json"]).output.splitlines()
    got = [json.loads(line) for line in lines]
    assert [e["name"] for e in got] == [
        "customer.created",
        "ticket.created",
        "message.created",
        "ticket.updated",
    ]
    assert got[1]["data"]["subject"] == "প্যাকেট পৌঁছায়নি"
    assert got[3]["data"]["changes"] == {"priority": {"from": 2, "to": 4}}
    assert got[3]["actor"] == {"type": "agent", "id": agent.id}

    after = runner.invoke(args=["events", "tail", "--after", str(got[2]["id"])]).output
    assert after.count("\n") == 1 and "ticket.updated" in after and f"agent:{agent.id}" in after


def test_a_customer_merge_records_the_merge_and_what_the_kept_record_gained(
    session: Session, agent: Agent, make_ticket: MakeTicket, committed: StreamRecorder
) -> None:
    from helpdesk.services.customers import merge_customers

    by_mail = make_ticket(sender="karim@example.com", sender_name="করিম").ticket.customer
    by_chat = make_ticket(sender="visitor-7", channel="chat").ticket.customer
    committed.clear()
    merge_customers(session, by_mail, by_chat, agent)
    session.commit()
    assert [(e.name, e.subject_id) for e in committed.events] == [
        ("customer.merged", by_mail.id),
        ("customer.updated", by_chat.id),
    ]
    merged, updated = committed.events
    assert merged.data == {"into_customer_id": by_chat.id}
    assert updated.data["changes"]["name"] == {"from": "", "to": "করিম"}
    assert updated.data["changes"]["email"] == {"from": None, "to": "karim@example.com"}
