"""SLA: policies, each ticket's targets and due times, their warnings and breaches.

**Policies.** An admin's policy has targets per priority (first response, next response,
resolution; minutes), counted in business hours on a calendar or on the clock, and conditions
(services/conditions.py) choosing the tickets it applies to; the first active policy by position
whose conditions match applies.

**A ticket's clocks.** Each target the policy has for the ticket's priority is a clock in the
ticket's ``sla`` JSON: minutes used so far, running since when (None while paused), and whether
it was warned, breached, met. The due time of a running clock is its start plus what is left,
on the calendar; the ticket's columns mirror what the queue and the worker query:
``first_response_due_at``, ``next_response_due_at``, ``resolution_due_at``, ``sla_due_at`` (the
earliest, the queue's "SLA due" order and "breaching soon" view) and ``sla_timer_at`` (the next
warning or breach to fire).

- first response: from the ticket's creation to the first public reply of an agent;
- next response: from a customer's message (once answered before) to the next public reply;
- resolution: from creation to resolved, reopened tickets continuing their clock.

All clocks pause while the ticket is pending and resume when it is not. They are recomputed in
the transaction that changes the ticket, by a commit step reading what the transaction did
(:func:`stream.ticket_activity`): created, a reply or a customer's message, status, priority,
and anything the conditions read (team, tags, custom fields, ...): the policy is chosen again.

**Warnings and breaches** are domain events (``sla.warning``, ``sla.breached``) from durable
timers: :func:`fire_due`, the worker's task, reads ``sla_timer_at <= now`` through its partial
index and claims each with a conditional UPDATE in the transaction that records the event, so
it fires once, also after a restart (a timer due while no worker ran fires on the next round).
A target met late (the worker was down) is breached when met, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent, Calendar, EventConsumer, SlaPolicy, Ticket, TicketStatus
from helpdesk.models.sla import TARGETS
from helpdesk.services import business_hours, conditions, stream
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.unit_of_work import UnitOfWork, add_commit_step, unit_of_work

log = logging.getLogger("helpdesk.sla")

PRIORITIES = ("low", "normal", "high", "urgent")
MAX_MINUTES = 366 * 24 * 60
BATCH = 200
# What a ticket change may do to its SLA: these fields are read by the clocks or, through the
# conditions, by the choice of policy.
RELEVANT = {
    "status",
    "priority",
    "team_id",
    "assignee_id",
    "tags",
    "channel",
    "subject",
    "customer_id",
    "merged",
}


# --- policies ------------------------------------------------------------------------------------


def clean_targets(raw: Any) -> dict[str, dict[str, int]]:
    """``{"<priority>": {"first_response_minutes", "next_response_minutes"?,
    "resolution_minutes"?}}``; a priority by name or 1–4."""
    if not isinstance(raw, Mapping) or not raw:
        raise ServiceError(
            _("A policy needs targets for at least one priority."), code="invalid_targets"
        )
    out: dict[str, dict[str, int]] = {}
    for key, target in raw.items():
        rank = conditions.priority_rank(key)
        if rank is None or not isinstance(target, Mapping):
            raise ServiceError(
                _("Unknown priority: %(value)s", value=str(key)[:20]), code="invalid_targets"
            )
        minutes: dict[str, int] = {}
        for name in TARGETS:
            value = target.get(f"{name}_minutes")
            if value in (None, ""):
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                number = -1
            if not 0 < number <= MAX_MINUTES or isinstance(value, bool):
                raise ServiceError(
                    _("A target is a whole number of minutes, at least 1."),
                    code="invalid_targets",
                )
            minutes[f"{name}_minutes"] = number
        if minutes:
            out[PRIORITIES[rank - 1]] = minutes
    if not out:
        raise ServiceError(
            _("A policy needs targets for at least one priority."), code="invalid_targets"
        )
    return out


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())[:120]
    if not name:
        raise ServiceError(_("A policy needs a name."), code="name_required")
    return name


def _calendar(session: Session, calendar_id: int | None) -> int | None:
    if calendar_id is None:
        return None
    if session.get(Calendar, int(calendar_id)) is None:
        raise ServiceError(_("No such calendar."), code="unknown_calendar")
    return int(calendar_id)


def _policy_state(policy: SlaPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "calendar_id": policy.calendar_id,
        "business_hours": policy.business_hours,
        "targets": policy.targets,
        "conditions": policy.conditions,
        "position": policy.position,
        "warning_minutes": policy.warning_minutes,
        "active": policy.active,
    }


def policies(session: Session, *, active_only: bool = False) -> list[SlaPolicy]:
    q = select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)
    if active_only:
        q = q.where(SlaPolicy.active.is_(True))
    return list(session.scalars(q))


def create_policy(
    session: Session,
    actor: Agent | None,
    *,
    name: str,
    targets: Any,
    calendar_id: int | None = None,
    business_hours: bool = True,
    conditions_: Any = None,
    position: int | None = None,
    warning_minutes: int = 30,
) -> SlaPolicy:
    name = _clean_name(name)
    if session.scalar(select(SlaPolicy.id).where(SlaPolicy.name == name)):
        raise Conflict(_("A policy named %(name)s exists already.", name=name), code="name_taken")
    if position is None:
        last = session.scalar(select(SlaPolicy.position).order_by(SlaPolicy.position.desc()))
        position = (last + 1) if last is not None else 0
    policy = SlaPolicy(
        name=name,
        calendar_id=_calendar(session, calendar_id),
        business_hours=bool(business_hours),
        targets=clean_targets(targets),
        conditions=conditions.check(conditions_),
        position=int(position),
        warning_minutes=max(0, min(int(warning_minutes), 24 * 60)),
        active=True,
    )
    session.add(policy)
    session.flush()
    stream.record(session, "sla_policy.created", "sla_policy", policy.id, actor, name=name)
    _forget_on_commit(session)
    return policy


def update_policy(
    session: Session, policy: SlaPolicy, actor: Agent | None, **changes: Any
) -> dict[str, Any]:
    """Change what is given (name, targets, calendar_id, business_hours, conditions, position,
    warning_minutes, active); open tickets' due times follow (:func:`recompute_open`)."""
    before = _policy_state(policy)
    if "name" in changes:
        policy.name = _clean_name(changes["name"])
        other = session.scalar(select(SlaPolicy.id).where(SlaPolicy.name == policy.name))
        if other is not None and other != policy.id:
            raise Conflict(
                _("A policy named %(name)s exists already.", name=policy.name), code="name_taken"
            )
    if "targets" in changes:
        policy.targets = clean_targets(changes["targets"])
    if "calendar_id" in changes:
        policy.calendar_id = _calendar(session, changes["calendar_id"])
    if "business_hours" in changes:
        policy.business_hours = bool(changes["business_hours"])
    if "conditions" in changes:
        policy.conditions = conditions.check(changes["conditions"])
    if "position" in changes:
        policy.position = int(changes["position"])
    if "warning_minutes" in changes:
        policy.warning_minutes = max(0, min(int(changes["warning_minutes"]), 24 * 60))
    if "active" in changes:
        policy.active = bool(changes["active"])
    session.flush()
    after = _policy_state(policy)
    diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if diff:
        stream.record(session, "sla_policy.updated", "sla_policy", policy.id, actor, changes=diff)
        _forget_on_commit(session)
    return diff


def delete_policy(session: Session, policy: SlaPolicy, actor: Agent | None) -> None:
    stream.record(session, "sla_policy.deleted", "sla_policy", policy.id, actor, name=policy.name)
    # Its tickets are recomputed in the background (on_change); until then they point nowhere.
    session.execute(
        update(Ticket)
        .where(Ticket.sla_policy_id == policy.id)
        .values(sla_policy_id=None)
        .execution_options(synchronize_session=False)
    )
    session.delete(policy)
    session.flush()
    _forget_on_commit(session)


# --- the clocks ----------------------------------------------------------------------------------


@dataclass
class Policy:
    """A policy as the clocks read it, with its calendar's schedule."""

    id: int
    name: str
    targets: dict[str, dict[str, int]]
    conditions: list[dict[str, Any]]
    business: bool
    schedule: business_hours.Schedule | None
    warning: timedelta
    # The policy names its calendar; else a ticket's team's calendar applies, else the default.
    own_calendar: bool = True

    def minutes(self, priority: int, target: str) -> int | None:
        return self.targets.get(PRIORITIES[priority - 1], {}).get(f"{target}_minutes")


@dataclass
class Policies:
    """The active policies, loaded once per transaction that needs them."""

    items: list[Policy] = field(default_factory=list)
    default_schedule: business_hours.Schedule | None = None
    # Teams' calendars by calendar id, read when a ticket of such a team first needs one.
    calendars: dict[int, business_hours.Schedule] = field(default_factory=dict)

    def team_schedule(self, session: Session, ticket: Ticket) -> business_hours.Schedule | None:
        """The calendar of the ticket's team, if it has one of its own."""
        team = ticket.team
        calendar_id = team.calendar_id if team is not None else None
        if calendar_id is None:
            return None
        if calendar_id not in self.calendars:
            calendar = session.get(Calendar, calendar_id)
            if calendar is None:
                return None
            self.calendars[calendar_id] = business_hours.Schedule.of(calendar)
        return self.calendars[calendar_id]

    def effective(self, session: Session, policy: Policy, ticket: Ticket) -> Policy:
        """``policy`` on the calendar that applies to ``ticket``: its own, else the ticket's
        team's, else the installation's default."""
        if policy.own_calendar or not policy.business:
            return policy
        team = self.team_schedule(session, ticket)
        return replace(policy, schedule=team) if team is not None else policy

    def choose(self, facts: conditions.Facts) -> Policy | None:
        for policy in self.items:
            if conditions.matches(policy.conditions, facts):
                return policy
        return None

    def by_id(self, policy_id: int | None) -> Policy | None:
        return next((p for p in self.items if p.id == policy_id), None)


def load(session: Session) -> Policies:
    rows = list(
        session.scalars(
            select(SlaPolicy)
            .where(SlaPolicy.active.is_(True))
            .order_by(SlaPolicy.position, SlaPolicy.id)
            .options(selectinload(SlaPolicy.calendar).selectinload(Calendar.holidays))
        )
    )
    found = Policies()
    if not rows:
        return found
    default: business_hours.Schedule | None = None
    if any(p.calendar is None and p.business_hours for p in rows):
        default = business_hours.Schedule.of(business_hours.default_calendar(session))
    for row in rows:
        schedule = business_hours.Schedule.of(row.calendar) if row.calendar else default
        found.items.append(
            Policy(
                id=row.id,
                name=row.name,
                targets=row.targets or {},
                conditions=row.conditions or [],
                business=row.business_hours,
                schedule=schedule,
                warning=timedelta(minutes=row.warning_minutes),
                own_calendar=row.calendar is not None,
            )
        )
    found.default_schedule = default
    return found


# The active policies as the clocks read them, kept per process for a short while: the commit
# step runs in every transaction that touches a ticket (a chat line's too), and without a
# policy it must cost nothing. A change made here is seen at its commit; one made by another
# process within CACHE_SECONDS, at the latest when the worker's background recompute (which
# reads the policies afresh) reaches the ticket.
CACHE_SECONDS = 30.0
_cached: tuple[float, Policies] | None = None


def cached(session: Session) -> Policies:
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] > CACHE_SECONDS:
        _cached = (now, load(session))
    return _cached[1]


def forget() -> None:
    """Read the policies afresh next time (a policy or calendar changed)."""
    global _cached
    _cached = None


def _forget_on_commit(session: Session) -> None:
    unit_of_work(session).after_commit(forget)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _clocks(ticket: Ticket) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in ((ticket.sla or {}).get("clocks") or {}).items()}


def _start(clocks: dict[str, dict[str, Any]], target: str, when: datetime) -> None:
    clocks[target] = {
        "used": 0.0,
        "since": _iso(when),
        "warned": False,
        "breached": False,
        "done": None,
    }


def _used(policy: Policy, clock: dict[str, Any], until: datetime) -> float:
    since = _time(clock.get("since"))
    used = float(clock.get("used") or 0.0)
    if since is None:
        return used
    if policy.business and policy.schedule is not None:
        return used + business_hours.business_minutes_between(policy.schedule, since, until)
    return used + max(0.0, (until - since).total_seconds() / 60)


def _due(policy: Policy, clock: dict[str, Any], minutes: int) -> datetime | None:
    since = _time(clock.get("since"))
    if since is None or clock.get("done"):
        return None
    left = max(0.0, minutes - float(clock.get("used") or 0.0))
    return business_hours.add_minutes(policy.schedule, since, left, business=policy.business)


def _finish(
    session: Session,
    ticket: Ticket,
    policy: Policy,
    clock: dict[str, Any],
    target: str,
    when: datetime,
) -> None:
    """The target is met at ``when`` (or breached, when that is after its due time)."""
    minutes = policy.minutes(ticket.priority, target)
    due = _due(policy, clock, minutes) if minutes else None
    late = due is not None and when > due
    clock["done"] = "breached" if late or clock.get("breached") else "met"
    clock["since"] = None
    if late and not clock.get("breached"):
        clock["breached"] = True
        _record(session, ticket, policy, "sla.breached", target, due)


def _record(
    session: Session,
    ticket: Ticket,
    policy: Policy,
    name: str,
    target: str,
    due: datetime | None,
) -> None:
    stream.record(
        session,
        name,
        "ticket",
        ticket.id,
        None,
        ticket_id=ticket.id,
        target=target,
        policy_id=policy.id,
        policy=policy.name,
        due_at=_iso(due),
    )


def apply(
    session: Session,
    ticket: Ticket,
    found: Policies,
    activity: Mapping[str, Any],
    now: datetime,
    *,
    first_text: Any = None,
) -> None:
    """Bring ``ticket``'s clocks and due times up to date with what happened to it."""
    schedule = found.team_schedule(session, ticket) or found.default_schedule
    facts = conditions.Facts(
        ticket,
        now=now,
        business_hours=(
            (lambda when: business_hours.is_open(schedule, when)) if schedule is not None else None
        ),
        first_text=first_text,
    )
    policy = found.choose(facts) if found.items else None
    state = dict(ticket.sla or {})
    clocks = _clocks(ticket)
    if policy is None:
        if ticket.sla_policy_id is not None or clocks:
            ticket.sla_policy_id = None
            ticket.sla = None
        _mirror(ticket, None, {}, now)
        return
    policy = found.effective(session, policy, ticket)
    previous = found.effective(session, found.by_id(ticket.sla_policy_id) or policy, ticket)
    created = activity.get("created", False)
    if created or (not clocks and ticket.sla_policy_id is None):
        clocks = {}
        start = ticket.created_at or now
        if ticket.first_response_at is None:
            _start(clocks, "first_response", start)
        _start(clocks, "resolution", start)
    # Replies and customer messages (in the order they happened in this transaction).
    for direction, internal, actor_type in activity.get("messages", []):
        if internal:
            continue
        if direction == "outbound" and actor_type == "agent":
            for target in ("first_response", "next_response"):
                clock = clocks.get(target)
                if clock and not clock.get("done") and clock.get("since") is not None:
                    _finish(session, ticket, previous, clock, target, now)
                elif clock and not clock.get("done"):  # paused (pending) and answered
                    clock["done"] = "breached" if clock.get("breached") else "met"
        elif direction == "inbound" and not created:
            first = clocks.get("first_response")
            answered = first is None or first.get("done")
            nxt = clocks.get("next_response")
            if (
                answered
                and ticket.first_response_at is not None
                and (nxt is None or nxt.get("done"))
            ):
                _start(clocks, "next_response", now)
    # Status: pending pauses, back to work resumes, resolved finishes the resolution clock.
    status = ticket.status
    for target, clock in clocks.items():
        if clock.get("done"):
            if (
                target == "resolution"
                and status.active
                and clock.get("done") in ("met", "breached")
                and "status" in activity.get("changed", ())
            ):
                # Reopened: the resolution clock continues where it stopped.
                clock["done"] = None
                clock["since"] = None if status == TicketStatus.PENDING else _iso(now)
            continue
        running = clock.get("since") is not None
        if status == TicketStatus.PENDING and running:
            clock["used"] = _used(previous, clock, now)
            clock["since"] = None
        elif status.active and status != TicketStatus.PENDING and not running:
            clock["since"] = _iso(now)
        elif not status.active:
            if target == "resolution":
                if running:
                    _finish(session, ticket, previous, clock, target, now)
                else:
                    clock["done"] = "breached" if clock.get("breached") else "met"
            else:  # resolved without a reply: the response target no longer applies
                clock["used"] = _used(previous, clock, now) if running else clock.get("used")
                clock["since"] = None
                clock["done"] = "breached" if clock.get("breached") else "stopped"
    if previous.id != policy.id and ticket.sla_policy_id is not None:
        # Another policy now: the clocks keep their time; warnings may come again.
        for clock in clocks.values():
            if not clock.get("done"):
                clock["warned"] = False
    # Targets the policy no longer measures for this priority are dropped (a running one only).
    for target in list(clocks):
        if policy.minutes(ticket.priority, target) is None and not clocks[target].get("done"):
            del clocks[target]
    ticket.sla_policy_id = policy.id
    state["clocks"] = clocks
    state["policy"] = policy.name
    ticket.sla = state
    _mirror(ticket, policy, clocks, now)


def _mirror(
    ticket: Ticket, policy: Policy | None, clocks: dict[str, dict[str, Any]], now: datetime
) -> None:
    """The queryable columns from the clocks."""
    dues: dict[str, datetime | None] = {t: None for t in TARGETS}
    timer: datetime | None = None
    for target, clock in clocks.items():
        if policy is None:
            break
        minutes = policy.minutes(ticket.priority, target)
        due = _due(policy, clock, minutes) if minutes else None
        dues[target] = due
        if due is None:
            continue
        if not clock.get("warned") and policy.warning:
            moment = due - policy.warning
            timer = moment if timer is None else min(timer, moment)
        elif not clock.get("breached"):
            timer = due if timer is None else min(timer, due)
    ticket.first_response_due_at = dues["first_response"]
    ticket.next_response_due_at = dues["next_response"]
    ticket.resolution_due_at = dues["resolution"]
    running = [d for d in dues.values() if d is not None]
    ticket.sla_due_at = min(running) if running else None
    ticket.sla_timer_at = timer


# --- the commit step -----------------------------------------------------------------------------

_RECOMPUTE = "sla.recompute_open"


def _relevant(activity: Mapping[str, Any]) -> bool:
    changed = activity.get("changed", set())
    return bool(
        activity.get("created")
        or activity.get("messages")
        or any(name in RELEVANT or name.startswith("custom.") for name in changed)
    )


def _first_text(session: Session, ticket: Ticket) -> Any:
    def read() -> str:
        from helpdesk.models import Message

        return (
            session.scalar(
                select(Message.body_text)
                .where(Message.ticket_id == ticket.id)
                .order_by(Message.id)
                .limit(1)
            )
            or ""
        )

    return read


def _step(session: Session, uow: UnitOfWork) -> None:
    """Before the events are written: the SLA of every ticket this transaction touched in a way
    the clocks or the conditions care about."""
    activity = stream.ticket_activity(uow)
    touched = {tid: a for tid, a in activity.items() if _relevant(a)}
    if not touched:
        return
    found = cached(session)
    if not found.items:
        return  # no policy: nothing to keep (tickets left with one are the recompute's)
    now = utcnow()
    for ticket_id, what in touched.items():
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            continue
        apply(session, ticket, found, what, now, first_text=_first_text(session, ticket))


add_commit_step("sla.clocks", _step, order=80)


# Policy or calendar changes: open tickets' due times follow, in the background. The stream
# consumer below notes that a recompute is wanted (a durable cursor: a row of the consumers'
# positions table, whose last_id is the ticket id reached, 0 to start); the worker's task walks
# the active tickets in id order from it, a page per transaction, and drops the row at the end.
# A second change meanwhile starts the walk again from 0.
CONSUMER = "sla.changes"
RECOMPUTE_CURSOR = "sla.recompute@tickets"
CHANGES = {
    "sla_policy.created",
    "sla_policy.updated",
    "sla_policy.deleted",
    "calendar.updated",
    "calendar.deleted",
}
PAGE = 500
ROUND_SECONDS = 1.0
TICK_SECONDS = 0.08


def on_change(session: Session, event: stream.StoredEvent) -> None:
    """The stream consumer: a policy or calendar changed, so every open ticket is recomputed."""
    if event.name not in CHANGES:
        return
    _forget_on_commit(session)
    cursor = session.scalar(
        select(EventConsumer).where(EventConsumer.name == RECOMPUTE_CURSOR).with_for_update()
    )
    if cursor is None:
        session.add(EventConsumer(name=RECOMPUTE_CURSOR, last_id=0))
    else:
        cursor.last_id = 0


def recompute_open(
    session: Session, *, after_id: int = 0, limit: int = PAGE, now: datetime | None = None
) -> tuple[int, int | None]:
    """Recompute the SLA of up to ``limit`` active tickets with id > ``after_id``; returns how
    many and the last id (None when there are no more)."""
    found = load(session)
    now = now or utcnow()
    rows = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.active.is_(True), Ticket.id > after_id)
            .order_by(Ticket.id)
            .limit(limit)
        )
    )
    for ticket in rows:
        apply(session, ticket, found, {"changed": {"policy"}}, now)
    return len(rows), (rows[-1].id if len(rows) == limit else None)


def recompute_progress(session: Session) -> tuple[int, int] | None:
    """(tickets done so far, active tickets) while a recompute runs; None when none does."""
    cursor = session.scalar(
        select(EventConsumer.last_id).where(EventConsumer.name == RECOMPUTE_CURSOR)
    )
    if cursor is None:
        return None
    total = session.scalar(select(func.count()).where(Ticket.active.is_(True))) or 0
    done = (
        session.scalar(select(func.count()).where(Ticket.active.is_(True), Ticket.id <= cursor))
        or 0
    )
    return done, total


def run_recompute(app: Flask, budget: float = ROUND_SECONDS) -> int:
    """Advance a wanted recompute by pages for at most ``budget`` seconds; returns tickets
    recomputed."""
    started = time.monotonic()
    total = 0
    with read_only_transactions(), db.transaction(app) as session:  # mostly: nothing wanted
        if (
            session.scalar(
                select(EventConsumer.last_id).where(EventConsumer.name == RECOMPUTE_CURSOR)
            )
            is None
        ):
            return 0
    while time.monotonic() - started < budget:
        with db.transaction(app) as session:
            cursor = session.scalar(
                select(EventConsumer)
                .where(EventConsumer.name == RECOMPUTE_CURSOR)
                .with_for_update()
            )
            if cursor is None:
                return total
            count, last = recompute_open(session, after_id=cursor.last_id)
            total += count
            if last is None:
                session.delete(cursor)
                log.info("SLA due times recomputed")
                return total
            cursor.last_id = last
    return total


# --- timers --------------------------------------------------------------------------------------


def fire(session: Session, ticket_id: int, seen: datetime, now: datetime | None = None) -> int:
    """Fire the warnings and breaches of ticket ``ticket_id`` due by now, its timer read as
    ``seen`` (claimed with a conditional UPDATE: once, whoever gets there first). Returns how
    many events it recorded."""
    now = now or utcnow()
    claimed = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.sla_timer_at == seen)
        .values(sla_timer_at=None)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return 0
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None:
        return 0
    found = cached(session)
    policy = found.by_id(ticket.sla_policy_id)
    if policy is None and ticket.sla_policy_id is not None:
        forget()  # a policy made by another process since this one read them
        found = cached(session)
        policy = found.by_id(ticket.sla_policy_id)
    if policy is None:
        return 0
    policy = found.effective(session, policy, ticket)
    clocks = _clocks(ticket)
    fired = 0
    for target, clock in clocks.items():
        minutes = policy.minutes(ticket.priority, target)
        due = _due(policy, clock, minutes) if minutes else None
        if due is None:
            continue
        if not clock.get("breached") and due <= now:
            clock["breached"] = True
            clock["warned"] = True
            _record(session, ticket, policy, "sla.breached", target, due)
            fired += 1
        elif not clock.get("warned") and due - policy.warning <= now:
            clock["warned"] = True
            _record(session, ticket, policy, "sla.warning", target, due)
            fired += 1
    state = dict(ticket.sla or {})
    state["clocks"] = clocks
    ticket.sla = state
    _mirror(ticket, policy, clocks, now)
    return fired


def due_timers(session: Session, now: datetime, limit: int = BATCH) -> list[tuple[int, datetime]]:
    rows = session.execute(
        select(Ticket.id, Ticket.sla_timer_at)
        .where(Ticket.sla_timer_at.is_not(None), Ticket.sla_timer_at <= now)
        .order_by(Ticket.sla_timer_at)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows if r[1] is not None]


def fire_due(app: Flask) -> int:
    """The worker's task: every SLA warning and breach due now (a batch of at most
    :data:`BATCH` in one transaction, a savepoint per ticket); then a wanted recompute, for a
    few seconds a round."""
    done = 0
    now = utcnow()
    with read_only_transactions(), db.transaction(app) as session:
        due = due_timers(session, now)
    if due:
        # One transaction for the batch (a burst of breaches is one commit, not two hundred),
        # each ticket in a savepoint of its own: one that fails is retried next round alone.
        # At most TICK_SECONDS of firing a round: the worker runs a task again at once while it
        # has work, so a burst is a run of short rounds, not one that holds up mail.
        deadline = time.monotonic() + TICK_SECONDS
        with db.transaction(app) as session:
            for ticket_id, seen in due:
                try:
                    with session.begin_nested():
                        done += fire(session, ticket_id, seen, now)
                except Exception:
                    log.exception("the SLA timer of ticket %s failed", ticket_id)
                if time.monotonic() > deadline:
                    break
    return done + run_recompute(app)


# --- what a ticket shows -------------------------------------------------------------------------


def summary(ticket: Ticket) -> dict[str, Any] | None:
    """The ticket's SLA as the API and the ticket page show it: the policy, each target's due
    time and state (running, paused, met, breached, stopped), and the breached targets."""
    state = ticket.sla or {}
    clocks = state.get("clocks") or {}
    if not clocks:
        return None
    dues = {
        "first_response": ticket.first_response_due_at,
        "next_response": ticket.next_response_due_at,
        "resolution": ticket.resolution_due_at,
    }
    targets = {}
    for target in TARGETS:
        clock = clocks.get(target)
        if clock is None:
            continue
        if clock.get("done"):
            status = clock["done"]
        elif clock.get("breached"):
            status = "breached"
        elif clock.get("since") is None:
            status = "paused"
        else:
            status = "running"
        targets[target] = {"status": status, "due_at": _iso(dues[target])}
    return {
        "policy": state.get("policy"),
        "first_response_due_at": _iso(ticket.first_response_due_at),
        "next_response_due_at": _iso(ticket.next_response_due_at),
        "resolution_due_at": _iso(ticket.resolution_due_at),
        "targets": targets,
        "breached": [t for t in TARGETS if (clocks.get(t) or {}).get("breached")],
    }
