"""Automation rules: triggers run from the event stream in order (stop ends a run), on
conditions about custom fields and the message's language; the history says which rule changed
what; loops end; time rules act once per quiet period through their cursor; mail in the
customer's language; preview; bad rules refused with a clear message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, AuditEvent, OutboundMail, Team, Ticket, TicketStatus
from helpdesk.services import custom_fields, rules, stream, tickets
from helpdesk.services.errors import ServiceError
from tests.conftest import MakeTicket

pytestmark = pytest.mark.usefixtures("db_backend")


def run(session: Session) -> None:
    """What the worker's consumer does after a commit: the triggers of the new events (and of
    the events their actions cause), until there are none."""
    session.commit()
    while stream.consume(session, rules.CONSUMER, rules.on_event):
        session.commit()


@pytest.fixture(autouse=True)
def consumer_at_end(session: Session) -> None:
    stream.consume(session, rules.CONSUMER, rules.on_event, start_at_end=True)
    session.commit()


def rule(session: Session, admin: Agent, **kw: Any) -> Any:
    found = rules.create_rule(session, admin, **kw)
    session.commit()
    return found


def test_a_trigger_routes_bengali_mail_and_the_history_names_it(
    session: Session, admin: Agent, make_ticket: MakeTicket
) -> None:
    team = Team(name="বাংলা সাপোর্ট")
    session.add(team)
    session.commit()
    rule(
        session,
        admin,
        name="Bengali to the Bengali team",
        event="ticket.created",
        conditions_=[{"field": "language", "op": "is", "value": "bn"}],
        actions=[
            {"type": "set_team", "value": team.name},
            {"type": "add_tags", "value": "bangla, vip"},
            {"type": "set_priority", "value": "high"},
        ],
    )
    english = make_ticket(text="Where is my parcel?").ticket
    bengali = make_ticket(text="আমার অর্ডার এখনো আসেনি, দয়া করে দেখুন।").ticket
    start = stream.last_id(session)
    run(session)
    session.expire_all()
    assert session.get(Ticket, english.id).team_id is None  # type: ignore[union-attr]
    routed = session.get(Ticket, bengali.id)
    assert routed is not None and routed.team_id == team.id and routed.priority == 3
    assert [t.name for t in routed.tags] == ["bangla", "vip"]
    history = session.scalars(
        select(AuditEvent).where(
            AuditEvent.ticket_id == bengali.id, AuditEvent.action == "ticket.team"
        )
    ).one()
    assert history.data["rule"]["name"] == "Bengali to the Bengali team"
    updated = [e for e in stream.read(session, after=start) if e.name == "ticket.updated"]
    assert updated and updated[0].data["rule"]["name"] == "Bengali to the Bengali team"
    assert updated[0].actor_type == "system"


def test_order_stop_and_custom_field_conditions(
    session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket
) -> None:
    custom_fields.define_field(
        session, admin, object_type="ticket", key="plan", type="dropdown", label_en="Plan",
        options=["free", "gold"],
    )  # fmt: skip
    session.commit()
    rule(
        session,
        admin,
        name="Gold first",
        event="ticket.updated",
        conditions_=[
            {"field": "custom.plan", "op": "is", "value": "gold"},
            {"field": "changed", "op": "contains", "value": "custom.plan"},
        ],
        actions=[{"type": "set_priority", "value": "urgent"}],
        stop=True,
    )
    rule(
        session,
        admin,
        name="Everyone",
        event="ticket.updated",
        conditions_=[{"field": "changed", "op": "contains", "value": "custom.plan"}],
        actions=[{"type": "add_tags", "value": ["plan-changed"]}],
    )
    gold, free = make_ticket().ticket, make_ticket().ticket
    run(session)
    custom_fields.set_values(session, gold, {"plan": "gold"}, agent)
    custom_fields.set_values(session, free, {"plan": "free"}, agent)
    run(session)
    session.expire_all()
    gold, free = session.get(Ticket, gold.id), session.get(Ticket, free.id)  # type: ignore[assignment]
    assert gold.priority == 4 and [t.name for t in gold.tags] == []  # stopped after the first
    assert free.priority == 2 and [t.name for t in free.tags] == ["plan-changed"]


def test_rules_feeding_each_other_end(
    session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket
) -> None:
    rule(
        session,
        admin,
        name="Ping",
        event="ticket.updated",
        conditions_=[{"field": "tags", "op": "contains", "value": "ping"}],
        actions=[
            {"type": "remove_tags", "value": ["ping"]},
            {"type": "add_tags", "value": ["pong"]},
        ],
    )
    rule(
        session,
        admin,
        name="Pong",
        event="ticket.updated",
        conditions_=[{"field": "tags", "op": "contains", "value": "pong"}],
        actions=[
            {"type": "remove_tags", "value": ["pong"]},
            {"type": "add_tags", "value": ["ping"]},
        ],
    )
    ticket = make_ticket().ticket
    run(session)
    from helpdesk.services import tags

    tags.add_tags(session, ticket, ["ping"], agent)
    run(session)  # terminates: Ping → Pong → (Ping is in the chain) stop
    session.expire_all()
    names = [t.name for t in session.get(Ticket, ticket.id).tags]  # type: ignore[union-attr]
    assert names == ["ping"]
    counts = {r.name: r.run_count for r in rules.rules(session)}
    assert counts == {"Ping": 1, "Pong": 1}


def test_a_time_rule_acts_once_per_quiet_period(
    session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket
) -> None:
    reminder = rule(
        session,
        admin,
        name="Pending 3 days: remind",
        kind="time",
        after_hours=72,
        conditions_=[{"field": "status", "op": "is", "value": "pending"}],
        actions=[
            {
                "type": "send_email",
                "value": {
                    "to": "customer",
                    "subject": {
                        "en": "Still need help with {{ ticket.number }}?",
                        "bn": "এখনো সাহায্য দরকার? {{ ticket.number }}",
                    },
                    "body": {"en": "Reply to this mail.", "bn": "এই মেইলের উত্তর দিন।"},
                },
            },
            {"type": "add_note", "value": "Reminder sent by a rule."},
        ],
    )
    waiting = make_ticket(sender="rahim@example.com", language="bn").ticket
    open_one = make_ticket().ticket
    tickets.set_status(session, waiting, TicketStatus.PENDING, agent)
    session.commit()

    def quiet_for(hours: float, *ids: int) -> None:
        """The tickets were last updated ``hours`` ago (the clock the sweep reads is real)."""
        session.execute(
            update(Ticket)
            .where(Ticket.id.in_(ids))
            .values(updated_at=utcnow() - timedelta(hours=hours))
        )
        session.commit()

    quiet_for(48, waiting.id, open_one.id)
    assert rules.sweep(session, reminder, utcnow()) == 0  # two days: nothing yet
    quiet_for(73, waiting.id, open_one.id)
    # three days: the pending one is reminded, the open one looked at and left alone
    assert rules.sweep(session, reminder, utcnow()) == 2
    session.commit()
    mails = session.scalars(
        select(OutboundMail).where(OutboundMail.purpose == rules.RULE_MAIL)
    ).all()
    assert [(m.recipient, m.language) for m in mails] == [("rahim@example.com", "bn")]
    assert mails[0].payload["subject"] == f"এখনো সাহায্য দরকার? #{waiting.number}"
    # the next tick: nobody (the note moved the ticket on; the cursor passed the other)
    assert rules.sweep(session, reminder, utcnow()) == 0
    # quiet for another three days: reminded again, the open one (its cursor passed) not
    quiet_for(73, waiting.id)
    assert rules.sweep(session, reminder, utcnow()) == 1
    session.commit()
    assert (
        len(
            session.scalars(
                select(OutboundMail).where(OutboundMail.purpose == rules.RULE_MAIL)
            ).all()
        )
        == 2
    )
    assert open_one.id


def test_preview_and_checks(session: Session, admin: Agent, make_ticket: MakeTicket) -> None:
    make_ticket(subject="Refund please")
    make_ticket(subject="Where is my parcel")
    matched, looked = rules.preview(
        session, [{"field": "subject", "op": "matches", "value": "refund|money back"}]
    )
    assert [t.subject for t in matched] == ["Refund please"] and looked == 2
    bad_cases: list[dict[str, Any]] = [
        {"event": "ticket.exploded", "actions": [{"type": "add_tags", "value": ["x"]}]},
        {"event": "ticket.created", "actions": []},
        {"event": "ticket.created", "actions": [{"type": "launch_rocket"}]},
        {"event": "ticket.created", "actions": [{"type": "set_team", "value": "Nobody's team"}]},
        {"event": "ticket.created", "actions": [{"type": "assign", "value": "ghost@example.com"}]},
        {
            "event": "ticket.created",
            "actions": [{"type": "send_email", "value": {"to": "customer"}}],
        },
        {"kind": "time", "after_hours": 0, "actions": [{"type": "add_tags", "value": ["x"]}]},
    ]
    for bad in bad_cases:
        with pytest.raises(ServiceError):
            rules.create_rule(session, admin, name="bad", **bad)
        session.rollback()


def test_an_sla_breach_escalates_raises_priority_and_notifies_the_team(
    session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket
) -> None:
    """Escalation as rule actions on the SLA's events: the team hears of it (in-app, live)."""
    from helpdesk.models import Notification
    from helpdesk.services.events import capture_events

    team = Team(name="Tier 2", members=[agent])
    session.add(team)
    session.commit()
    rule(
        session,
        admin,
        name="Breach: escalate",
        event="sla.breached",
        conditions_=[{"field": "sla_target", "op": "is", "value": "first_response"}],
        actions=[
            {"type": "set_priority", "value": "urgent"},
            {"type": "set_team", "value": "Tier 2"},
            {"type": "notify", "value": "team"},
        ],
    )
    ticket = make_ticket().ticket
    run(session)
    stream.record(
        session, "sla.breached", "ticket", ticket.id, None, ticket_id=ticket.id,
        target="first_response",
    )  # fmt: skip
    with capture_events() as live:
        run(session)
    session.expire_all()
    escalated = session.get(Ticket, ticket.id)
    assert escalated is not None and escalated.priority == 4 and escalated.team_id == team.id
    (note,) = session.scalars(select(Notification).where(Notification.kind == "rule")).all()
    assert note.agent_id == agent.id and note.ticket_id == ticket.id
    assert [e.payload["rule"] for e in live.events if e.name == "notification"] == [
        "Breach: escalate"
    ]
