"""Tasks and their reminders on a controllable clock: a reminder fires once at its time (not
before) as an in-app notification, a live event, a stream event and a mail through a real SMTP
server in the agent's language; snooze, recurrence, a missed reminder after a restart, two
workers; tickets' follow-up dates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.models import (
    Agent,
    AgentRole,
    Message,
    MessageKind,
    Notification,
    OutboundMail,
    Task,
    TaskStatus,
    TicketStatus,
)
from helpdesk.services import outbox, reminders, stream, tasks, tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.errors import ServiceError
from helpdesk.services.events import EventRecorder
from tests.conftest import PASSWORD, MakeTicket, bn
from tests.servers import SmtpSink


class Clock:
    """The tasks' and reminders' "now", moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    for module in (tasks, reminders):
        monkeypatch.setattr(module, "utcnow", c)
    return c


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "smtp_sink" in request.fixturenames:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        return {"SMTP_HOST": sink.host, "SMTP_PORT": sink.port, "OUTBOX_BACKOFF_BASE_SECONDS": 0.0}
    return {}


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def fire(app: Flask, session: Session) -> int:
    """One worker round of the timers (the test's own reads end first, as a request's would)."""
    session.commit()
    return reminders.fire_due(app)


def new_task(session: Session, agent: Agent, clock: Clock, **kwargs: Any) -> Task:
    values: dict[str, Any] = {
        "title": "Call Rahim back",
        "due_at": clock.now + timedelta(hours=2),
        "remind_at": clock.now + timedelta(minutes=30),
        "assignee": agent,
    }
    values.update(kwargs)
    task = tasks.create_task(session, agent, **values)
    session.commit()
    return task


def notifications(session: Session, agent: Agent) -> list[Notification]:
    session.expire_all()
    return list(
        session.scalars(
            select(Notification).where(Notification.agent_id == agent.id).order_by(Notification.id)
        )
    )


def test_a_reminder_fires_once_at_its_time_not_before(
    app: Flask, session: Session, agent: Agent, clock: Clock, events: EventRecorder
) -> None:
    task = new_task(session, agent, clock)
    clock.advance(minutes=29, seconds=59)
    assert fire(app, session) == 0
    assert notifications(session, agent) == []

    clock.advance(seconds=1)
    with stream.capture() as recorded:
        assert fire(app, session) == 1
    (note,) = notifications(session, agent)
    assert note.kind == "task.reminder" and note.task_id == task.id and note.read_at is None
    assert [e.name for e in recorded.events] == ["task.reminder"]
    assert recorded.events[0].data["title"] == "Call Rahim back"
    live = [e for e in events.events if e.name == "notification"]
    assert len(live) == 1 and live[0].rooms == (f"agent:{agent.id}",)
    assert live[0].payload["kind"] == "task.reminder"
    assert live[0].payload["task_id"] == task.id
    (mail,) = session.scalars(select(OutboundMail))
    assert mail.purpose == "task.reminder" and mail.recipient == agent.email

    clock.advance(hours=5)
    assert fire(app, session) == 0  # never twice
    assert len(notifications(session, agent)) == 1
    assert len(session.scalars(select(OutboundMail)).all()) == 1


def test_snooze_moves_the_reminder_and_it_fires_again(
    app: Flask, session: Session, agent: Agent, clock: Clock
) -> None:
    task = new_task(session, agent, clock)
    clock.advance(minutes=30)
    assert fire(app, session) == 1
    tasks.snooze_task(session, session.get(Task, task.id), agent, clock.now + timedelta(hours=1))
    session.commit()
    clock.advance(minutes=59)
    assert fire(app, session) == 0
    clock.advance(minutes=1)
    assert fire(app, session) == 1
    assert len(notifications(session, agent)) == 2
    with pytest.raises(ServiceError):
        tasks.snooze_task(session, task, agent, clock.now - timedelta(minutes=1))


def test_a_completed_task_does_not_remind(
    app: Flask, session: Session, agent: Agent, clock: Clock
) -> None:
    task = new_task(session, agent, clock)
    assert tasks.complete_task(session, task, agent) is None
    session.commit()
    clock.advance(hours=1)
    assert fire(app, session) == 0
    assert notifications(session, agent) == []


@pytest.mark.parametrize(("recurrence", "days"), [("daily", 1), ("weekly", 7)])
def test_completing_a_recurring_task_creates_the_next_one(
    app: Flask, session: Session, agent: Agent, clock: Clock, recurrence: str, days: int
) -> None:
    task = new_task(session, agent, clock, recurrence=recurrence)
    with stream.capture() as recorded:
        following = tasks.complete_task(session, task, agent)
        session.commit()
    assert following is not None
    assert following.due_at == task.due_at + timedelta(days=days)
    assert following.remind_at == task.remind_at + timedelta(days=days)  # type: ignore[operator]
    assert following.status is TaskStatus.OPEN and following.recurrence.value == recurrence
    assert task.status is TaskStatus.DONE and task.next_fire_at is None
    assert [e.name for e in recorded.events] == ["task.created", "task.completed"]
    assert recorded.events[1].data["next_task_id"] == following.id
    # This one's reminder never fires; the next one's at its own time.
    clock.advance(days=days, minutes=29)
    assert fire(app, session) == 0
    clock.advance(minutes=1)
    assert fire(app, session) == 1
    (note,) = notifications(session, agent)
    assert note.task_id == following.id


def test_a_daily_task_keeps_its_wall_clock_time_in_the_agents_zone(
    session: Session, agent: Agent, clock: Clock
) -> None:
    agent.timezone = "Europe/Berlin"
    session.commit()
    # 09:00 in Berlin the day before summer time starts (2027-03-28).
    due = datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    clock.now = due - timedelta(hours=1)
    task = new_task(session, agent, clock, due_at=due, remind_at=None, recurrence="daily")
    following = tasks.complete_task(session, task, agent)
    assert following is not None
    assert following.due_at == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)  # 09:00 CEST


def test_a_missed_reminder_fires_on_the_next_round_after_a_restart(
    app: Flask, session: Session, agent: Agent, clock: Clock
) -> None:
    """The timer is in the database: a new process (a new app) fires what came due while no
    worker ran, once."""
    task = new_task(session, agent, clock, remind_at=clock.now + timedelta(seconds=5))
    session.commit()
    clock.advance(hours=3)  # the server was down meanwhile
    restarted = create_app(dict(app.config))
    with restarted.app_context():
        assert reminders.fire_due(restarted) == 1
        assert reminders.fire_due(restarted) == 0
    db.engine(restarted).dispose()
    (note,) = notifications(session, agent)
    assert note.task_id == task.id


def test_two_workers_never_fire_one_reminder_twice(
    app: Flask, session: Session, agent: Agent, clock: Clock
) -> None:
    for n in range(5):
        new_task(session, agent, clock, title=f"Task {n}")
    clock.advance(hours=1)
    session.commit()
    results: list[int] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            results.append(reminders.fire_due(app))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(results) == 5
    assert len(notifications(session, agent)) == 5
    assert len(session.scalars(select(OutboundMail)).all()) == 5


def test_the_claim_of_a_reminder_read_earlier_changes_nothing_after_another_fired_it(
    app: Flask, session: Session, agent: Agent, clock: Clock
) -> None:
    """What a second worker does when it read the same due reminder: its UPDATE matches no row."""
    task = new_task(session, agent, clock)
    clock.advance(hours=1)
    session.commit()
    with db.transaction(app) as s:
        due = reminders.due_reminders(s, clock.now)
    assert due == [(task.id, task.remind_at)]
    with db.transaction(app) as s:
        assert reminders.fire_reminder(s, *due[0]) is True
    with db.transaction(app) as s:
        assert reminders.fire_reminder(s, *due[0]) is False
    assert len(notifications(session, agent)) == 1


def test_the_reminder_mail_reaches_the_agent_in_their_language(
    app: Flask, session: Session, clock: Clock, smtp_sink: SmtpSink
) -> None:
    rumi = create_agent(session, "rumi@example.com", "রুমি", PASSWORD, AgentRole.AGENT, "bn")
    rumi.timezone = "Asia/Dhaka"
    session.commit()
    new_task(session, rumi, clock, title="রহিমকে ফোন করুন", notes="অর্ডার ৭")
    clock.advance(hours=1)
    assert fire(app, session) == 1
    assert outbox.drain(app) == 1
    (got,) = smtp_sink.wait_for(1)
    assert got.rcpt_tos == ("rumi@example.com",)
    mail = parse(got.data)
    assert str(mail["Subject"]) == bn("Reminder: %(title)s") % {"title": "রহিমকে ফোন করুন"}
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert bn("A reminder for your task:") in text
    assert "অর্ডার ৭" in text and "/agent/tasks" in text


def test_an_english_agent_gets_the_mail_in_english(
    app: Flask, session: Session, agent: Agent, clock: Clock, smtp_sink: SmtpSink
) -> None:
    new_task(session, agent, clock)
    clock.advance(hours=1)
    fire(app, session)
    outbox.drain(app)
    (got,) = smtp_sink.wait_for(1)
    mail = parse(got.data)
    assert str(mail["Subject"]) == "Reminder: Call Rahim back"
    assert "A reminder for your task:" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_the_reminder_shows_on_the_notifications_page_and_in_the_task_count(
    app: Flask, session: Session, agent: Agent, clock: Clock, agent_client: Any
) -> None:
    new_task(session, agent, clock, due_at=clock.now - timedelta(minutes=1))
    clock.advance(hours=1)
    fire(app, session)
    page = agent_client.get("/agent/notifications").get_data(as_text=True)
    assert "Reminder: Call Rahim back" in page
    assert agent_client.get("/agent/tasks/count").get_json() == {"count": 1}


def test_task_events_and_validation(session: Session, agent: Agent, clock: Clock) -> None:
    with stream.capture() as recorded:
        task = new_task(session, agent, clock)
        tasks.update_task(session, task, agent, title="Call Rahim", remind_at=None)
        session.commit()
        tasks.delete_task(session, task, agent)
        session.commit()
    names = [e.name for e in recorded.events]
    assert names == ["task.created", "task.updated", "task.deleted"]
    changes = recorded.events[1].data["changes"]
    assert changes["title"] == {"from": "Call Rahim back", "to": "Call Rahim"}
    assert changes["remind_at"]["to"] is None
    with pytest.raises(ServiceError):
        tasks.create_task(session, agent, title=" ", due_at=clock.now, assignee=agent)
    with pytest.raises(ServiceError):
        tasks.create_task(
            session,
            agent,
            title="x",
            due_at=datetime(2027, 1, 1),  # noqa: DTZ001
            assignee=agent,
        )


# --- follow-ups --------------------------------------------------------------------------------


def test_a_pending_ticket_reopens_on_its_follow_up_date_with_a_note(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket, clock: Clock
) -> None:
    ticket = make_ticket().ticket
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    reminders.set_follow_up(session, ticket, clock.now + timedelta(days=2), agent)
    session.commit()
    clock.advance(days=1)
    assert fire(app, session) == 0
    clock.advance(days=1)
    with stream.capture() as recorded:
        assert fire(app, session) == 1
    session.expire_all()
    assert ticket.status is TicketStatus.OPEN and ticket.follow_up_at is None
    last = session.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id.desc())
    ).first()
    assert last is not None and last.kind is MessageKind.SYSTEM and last.internal
    assert last.body_text == "Follow-up date reached"
    updated = [e for e in recorded.events if e.name == "ticket.updated"]
    assert updated[0].data["changes"]["status"] == {"from": "pending", "to": "open"}
    assert fire(app, session) == 0


def test_a_ticket_the_customer_answered_is_not_reopened_by_its_follow_up(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket, clock: Clock
) -> None:
    received = make_ticket(sender="rahim@example.com", subject="Order 7")
    ticket = received.ticket
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    reminders.set_follow_up(session, ticket, clock.now + timedelta(days=1), agent)
    session.commit()
    make_ticket(sender="rahim@example.com", subject=f"Re: [#{ticket.number}] Order 7")
    session.expire_all()
    assert ticket.status is TicketStatus.OPEN and ticket.follow_up_at is None
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    session.commit()
    clock.advance(days=2)
    assert fire(app, session) == 0
    session.expire_all()
    assert ticket.status is TicketStatus.PENDING
    notes = session.scalars(
        select(Message).where(Message.ticket_id == ticket.id, Message.kind == MessageKind.SYSTEM)
    ).all()
    assert notes == []


def test_only_a_pending_ticket_gets_a_follow_up_date(
    session: Session, agent: Agent, make_ticket: MakeTicket, clock: Clock
) -> None:
    ticket = make_ticket().ticket
    with pytest.raises(ServiceError):
        reminders.set_follow_up(session, ticket, clock.now + timedelta(days=1), agent)


def test_the_assignees_pages_are_told_their_list_changed(
    session: Session, agent: Agent, admin: Agent, clock: Clock, events: EventRecorder
) -> None:
    """``tasks.changed`` to ``agent:<id>`` of the assignee (both, on a reassignment): the
    navigation's count asks again."""
    task = new_task(session, admin, clock, assignee=agent)
    tasks.update_task(session, task, admin, assignee=admin)
    session.commit()
    tasks.complete_task(session, task, admin)
    session.commit()
    changed = [e.rooms for e in events.events if e.name == "tasks.changed"]
    assert changed == [
        (f"agent:{agent.id}",),
        tuple(sorted((f"agent:{agent.id}", f"agent:{admin.id}"))),
        (f"agent:{admin.id}",),
    ]
