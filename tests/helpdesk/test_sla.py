"""SLA with a controllable clock: due times in Dhaka's business hours (over a weekend, over
Eid), paused while pending, met by a reply, breached once; warnings and breaches from the
durable timers fire once; the policy is chosen by its conditions; a calendar change moves open
tickets' due times in the background."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Customer, Ticket, TicketStatus
from helpdesk.services import business_hours, custom_fields, sla, stream, tags, tickets
from helpdesk.services.customers import resolve_customer
from helpdesk.services.errors import ServiceError

pytestmark = pytest.mark.usefixtures("db_backend")
DHAKA = ZoneInfo("Asia/Dhaka")


def dhaka(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=DHAKA)


class Clock:
    def __init__(self) -> None:
        self.now = dhaka(2026, 12, 3, 16)

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sla, "utcnow", c)
    return c


@pytest.fixture
def customer(session: Session) -> Customer:
    c = resolve_customer(session, "email", "rahim@example.com", name="রহিম")
    session.commit()
    return c


def open_at(session: Session, customer: Customer, when: datetime, **kw: Any) -> Ticket:
    ticket = tickets.open_ticket(
        session,
        customer=customer,
        subject=kw.pop("subject", "My order"),
        channel="email",
        created_at=when,
        actor=customer,
        **kw,
    )
    session.commit()
    return ticket


def policy(session: Session, admin: Agent, **kw: Any) -> Any:
    found = sla.create_policy(
        session,
        admin,
        name=kw.pop("name", "Standard"),
        targets=kw.pop(
            "targets",
            {
                "normal": {
                    "first_response_minutes": 240,
                    "next_response_minutes": 120,
                    "resolution_minutes": 480,
                },
                "urgent": {"first_response_minutes": 60},
            },
        ),
        **kw,
    )
    session.commit()
    return found


def fire(app: Flask, session: Session) -> int:
    """One worker round (the test's own transaction ends first, as a request's would)."""
    session.commit()
    return sla.fire_due(app)


def names(session: Session, after: int) -> list[tuple[str, Any]]:
    return [
        (e.name, e.data.get("target"))
        for e in stream.read(session, after=after)
        if e.name.startswith("sla.")
    ]


def test_four_business_hours_from_thursday_afternoon_are_due_sunday_noon(
    session: Session, admin: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin)
    ticket = open_at(session, customer, dhaka(2026, 12, 3, 16))
    assert ticket.sla_policy_id is not None
    assert ticket.first_response_due_at == dhaka(2026, 12, 6, 12)
    # resolution: 8 business hours = Thursday's 1 + Sunday's 7 → Sunday 16:00
    assert ticket.resolution_due_at == dhaka(2026, 12, 6, 16)
    assert ticket.sla_due_at == ticket.first_response_due_at
    summary = sla.summary(ticket)
    assert summary is not None and summary["policy"] == "Standard"
    assert summary["targets"]["first_response"]["status"] == "running"


def test_the_same_over_eid(
    session: Session, admin: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin)
    clock.set(dhaka(2026, 3, 19, 16))
    ticket = open_at(session, customer, dhaka(2026, 3, 19, 16))
    # Friday and Saturday the weekend, Saturday to Monday Eid al-Fitr: Tuesday noon.
    assert ticket.first_response_due_at == dhaka(2026, 3, 24, 12)


def test_calendar_hours_count_every_hour(
    session: Session, admin: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin, business_hours=False)
    ticket = open_at(session, customer, dhaka(2026, 12, 3, 16))
    assert ticket.first_response_due_at == dhaka(2026, 12, 3, 20)


def test_pending_pauses_the_clocks(
    session: Session, admin: Agent, agent: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin)
    clock.set(dhaka(2026, 12, 6, 9))
    ticket = open_at(session, customer, dhaka(2026, 12, 6, 9))
    clock.set(dhaka(2026, 12, 6, 11))  # two business hours used
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    session.commit()
    assert ticket.resolution_due_at is None and ticket.sla_due_at is None
    assert ticket.sla_timer_at is None
    assert sla.summary(ticket)["targets"]["resolution"]["status"] == "paused"  # type: ignore[index]
    clock.set(dhaka(2026, 12, 7, 9))  # Monday morning, the customer answered
    tickets.set_status(session, ticket, TicketStatus.OPEN, agent)
    session.commit()
    # 480 - 120 = 360 minutes left from Monday 09:00
    assert ticket.resolution_due_at == dhaka(2026, 12, 7, 15)


def test_a_reply_meets_the_first_response_and_a_late_one_breaches_once(
    session: Session, admin: Agent, agent: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin)
    clock.set(dhaka(2026, 12, 6, 9))
    on_time = open_at(session, customer, dhaka(2026, 12, 6, 9))
    late = open_at(session, customer, dhaka(2026, 12, 6, 9), subject="Another")
    start = stream.last_id(session)
    clock.set(dhaka(2026, 12, 6, 10))
    tickets.reply_to_ticket(session, on_time, agent, "On it!")
    session.commit()
    assert sla.summary(on_time)["targets"]["first_response"]["status"] == "met"  # type: ignore[index]
    assert on_time.first_response_due_at is None
    assert on_time.sla_due_at == on_time.resolution_due_at
    clock.set(dhaka(2026, 12, 6, 14))  # 5 business hours: the 4-hour target is missed
    tickets.reply_to_ticket(session, late, agent, "Sorry for the wait")
    session.commit()
    assert sla.summary(late)["breached"] == ["first_response"]  # type: ignore[index]
    assert names(session, start) == [("sla.breached", "first_response")]
    # the customer writes again: the next-response clock starts
    clock.set(dhaka(2026, 12, 6, 15))
    from helpdesk.inbound import InboundMessage
    from helpdesk.services.inbound import receive

    receive(
        session,
        InboundMessage(
            channel_kind="email",
            sender_address="rahim@example.com",
            subject="Re: My order",
            text="Any news?",
            ticket_id=on_time.id,
        ),
    )
    session.commit()
    assert on_time.next_response_due_at == dhaka(2026, 12, 6, 17)


def test_warnings_and_breaches_fire_once_from_the_timers(
    app: Flask, session: Session, admin: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin, warning_minutes=30, targets={"normal": {"first_response_minutes": 60}})
    clock.set(dhaka(2026, 12, 6, 9))
    ticket = open_at(session, customer, dhaka(2026, 12, 6, 9))
    assert ticket.sla_timer_at == dhaka(2026, 12, 6, 9, 30)
    start = stream.last_id(session)
    session.commit()
    clock.set(dhaka(2026, 12, 6, 9, 29))
    assert fire(app, session) == 0
    clock.set(dhaka(2026, 12, 6, 9, 31))
    assert fire(app, session) == 1
    assert fire(app, session) == 0  # once
    session.expire_all()
    assert session.get(Ticket, ticket.id).sla_timer_at == dhaka(2026, 12, 6, 10)  # type: ignore[union-attr]
    clock.set(dhaka(2026, 12, 6, 10, 5))
    assert fire(app, session) == 1
    assert fire(app, session) == 0
    assert names(session, start) == [
        ("sla.warning", "first_response"),
        ("sla.breached", "first_response"),
    ]
    session.expire_all()
    fired = session.get(Ticket, ticket.id)
    assert fired is not None and fired.sla_timer_at is None
    assert sla.summary(fired)["breached"] == ["first_response"]  # type: ignore[index]


def test_the_first_matching_policy_applies_and_changes_choose_again(
    session: Session, admin: Agent, agent: Agent, customer: Customer, clock: Clock
) -> None:
    custom_fields.define_field(
        session, admin, object_type="ticket", key="plan", type="dropdown", label_en="Plan",
        options=["free", "gold"],
    )  # fmt: skip
    policy(
        session,
        admin,
        name="Gold customers",
        targets={"normal": {"first_response_minutes": 30}},
        conditions_=[{"field": "custom.plan", "op": "is", "value": "gold"}],
        business_hours=False,
    )
    policy(
        session,
        admin,
        name="VIP tag",
        targets={"normal": {"first_response_minutes": 45}},
        conditions_=[{"field": "tags", "op": "contains", "value": "vip"}],
        business_hours=False,
    )
    policy(session, admin, name="Everyone else", business_hours=False)
    ticket = open_at(session, customer, dhaka(2026, 12, 3, 16))
    assert ticket.sla["policy"] == "Everyone else"  # type: ignore[index]
    tags.add_tags(session, ticket, ["vip"], agent)
    session.commit()
    assert ticket.sla["policy"] == "VIP tag"  # type: ignore[index]
    assert ticket.first_response_due_at == dhaka(2026, 12, 3, 16, 45)
    custom_fields.set_values(session, ticket, {"plan": "gold"}, agent)
    session.commit()
    assert ticket.sla["policy"] == "Gold customers"  # type: ignore[index]
    assert ticket.first_response_due_at == dhaka(2026, 12, 3, 16, 30)
    tickets.set_priority(session, ticket, 4, agent)  # urgent: no target in that policy
    session.commit()
    assert ticket.first_response_due_at is None


def test_a_calendar_change_moves_open_tickets_in_the_background(
    app: Flask, session: Session, admin: Agent, customer: Customer, clock: Clock
) -> None:
    policy(session, admin)
    ticket = open_at(session, customer, dhaka(2026, 12, 3, 16))
    assert ticket.first_response_due_at == dhaka(2026, 12, 6, 12)
    calendar = business_hours.default_calendar(session)
    session.commit()
    stream.consume(session, sla.CONSUMER, sla.on_change, start_at_end=True)
    session.commit()
    # Saturday becomes a working day
    business_hours.update_calendar(
        session, calendar, admin, hours={**calendar.hours, "sat": [["09:00", "17:00"]]}
    )
    session.commit()
    stream.consume(session, sla.CONSUMER, sla.on_change)
    session.commit()
    assert sla.recompute_progress(session) == (0, 1)
    session.commit()
    assert sla.run_recompute(app) == 1
    session.expire_all()
    moved = session.get(Ticket, ticket.id)
    assert moved is not None and moved.first_response_due_at == dhaka(2026, 12, 5, 12)
    assert sla.recompute_progress(session) is None


def test_policies_are_checked(session: Session, admin: Agent) -> None:
    bad: dict[str, Any]
    for bad in (
        {"targets": {}},
        {"targets": {"critical": {"first_response_minutes": 5}}},
        {"targets": {"normal": {"first_response_minutes": 0}}},
        {"targets": {"normal": {"first_response_minutes": "soon"}}},
        {"conditions_": [{"field": "nope", "op": "is", "value": 1}]},
        {"conditions_": [{"field": "subject", "op": "matches", "value": "(unclosed"}]},
        {"conditions_": [{"field": "priority", "op": "is", "value": "whenever"}]},
    ):
        with pytest.raises(ServiceError):
            args: dict[str, Any] = {"targets": {"1": {"first_response_minutes": 5}}, **bad}
            sla.create_policy(session, admin, name="x", **args)
        session.rollback()
    assert sla.clean_targets({"4": {"first_response_minutes": "15"}}) == {
        "urgent": {"first_response_minutes": 15}
    }


def test_a_policy_without_a_calendar_follows_the_ticket_s_team(
    session: Session, admin: Agent, agent: Agent, customer: Customer, clock: Clock
) -> None:
    """Teams use a calendar: a weekend team's tickets are due on its days, not the default's."""
    from helpdesk.models import Team

    business_hours.default_calendar(session)  # Sunday to Thursday
    weekend = business_hours.create_calendar(
        session,
        admin,
        name="Every day",
        hours={
            day: [["09:00", "17:00"]] for day in ("sat", "sun", "mon", "tue", "wed", "thu", "fri")
        },
    )
    team = Team(name="Weekend desk", calendar_id=weekend.id)
    session.add(team)
    session.commit()
    policy(session, admin)
    ticket = open_at(session, customer, dhaka(2026, 12, 3, 16))
    assert ticket.first_response_due_at == dhaka(2026, 12, 6, 12)  # the default: Sunday
    tickets.set_team(session, ticket, team, agent)
    session.commit()
    assert ticket.first_response_due_at == dhaka(2026, 12, 4, 12)  # the team's: Friday
