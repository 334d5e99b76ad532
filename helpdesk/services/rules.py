"""Automation rules: triggers on the event stream, time rules from the worker.

**Triggers** (event rules) react to an event of the durable stream: ``ticket.created``,
``ticket.updated``, ``message.created``, ``sla.warning``, ``sla.breached``. The worker's stream
consumer (:func:`on_event`) takes each event once, in order, and runs the active rules of its
name by position: a rule whose conditions hold runs its actions; one marked ``stop`` ends the
run. What the actions change is written through the ticket verbs in the consumer's transaction
(with its position), so an event's rules run once, also across a crash and restart.

**Time rules** look at active tickets whose last update is ``after_hours`` old ("pending for 3
days → remind the customer; 7 days → resolve"). :func:`run_time_rules`, a worker task, walks
each rule's window through the queue's (active, updated_at, id) index from the rule's own
cursor, a page per tick: each ticket is looked at once per quiet period, whatever the number of
tickets, and a ticket that changes comes back when it has been quiet that long again.

**Loops.** Actions run inside :func:`rule_context.acting`: the history says which rule changed
what, and the events they cause carry the chain of rules behind them. A rule never runs on an
event its own chain caused, and a chain stops after :data:`MAX_CHAIN` rules.

**Actions** (``{"type", "value"}``): ``set_status``, ``set_priority``, ``set_team``, ``assign``
(an agent's email or id, ``round_robin`` (the team's automatic assignment), ``none``),
``add_tags``, ``remove_tags``, ``set_custom`` (``{"key": value}``), ``add_note`` (an internal
note), ``notify`` (``assignee`` or ``team``: an in-app notification, live), ``send_email``
(``{"to": "customer"|"assignee"|"team", "subject": {"en","bn"}, "body": {"en","bn"}}``, the
recipient's language chosen, placeholders like a macro's), ``webhook`` (a registered webhook's
id: the ticket is delivered to it), ``apply_macro`` (a macro's ticket actions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, joinedload, selectinload

from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    Customer,
    Direction,
    Macro,
    Message,
    MessageKind,
    Rule,
    RuleKind,
    Team,
    Ticket,
    TicketStatus,
)
from helpdesk.services import business_hours, conditions, custom_fields, sla, stream, tags, tickets
from helpdesk.services.announcements import announce
from helpdesk.services.errors import Conflict, NotFound, ServiceError
from helpdesk.services.messages import append_message
from helpdesk.services.rule_context import acting
from helpdesk.unit_of_work import unit_of_work

log = logging.getLogger("helpdesk.rules")

EVENTS = ("ticket.created", "ticket.updated", "message.created", "sla.warning", "sla.breached")
ACTIONS = (
    "set_status",
    "set_priority",
    "set_team",
    "assign",
    "add_tags",
    "remove_tags",
    "set_custom",
    "add_note",
    "notify",
    "send_email",
    "webhook",
    "apply_macro",
)
MAX_CHAIN = 5
MAX_ACTIONS = 20
MAX_AFTER_HOURS = 24 * 365
TIME_PAGE = 100
CONSUMER = "rules"
RULE_MAIL = "rule.mail"


# --- saving rules --------------------------------------------------------------------------------


def _action_error(index: int, message: str) -> ServiceError:
    return ServiceError(
        _("Action %(n)d: %(error)s", n=index, error=message), code="invalid_actions"
    )


def _text_pair(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return {"en": value, "bn": ""}
    if isinstance(value, Mapping):
        return {"en": str(value.get("en") or ""), "bn": str(value.get("bn") or "")}
    return {"en": "", "bn": ""}


def check_actions(session: Session, raw: Any) -> list[dict[str, Any]]:
    """An action list as saved, each one checked against what exists now (a team, an agent, a
    macro, a webhook, a custom field, a template that renders)."""
    from helpdesk.services.macros import _check_template  # the macros' sandboxed Jinja

    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
        raise ServiceError(_("A rule needs at least one action."), code="invalid_actions")
    if len(raw) > MAX_ACTIONS:
        raise ServiceError(_("Too many actions."), code="invalid_actions")
    out = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or item.get("type") not in ACTIONS:
            kind = str(item.get("type") if isinstance(item, Mapping) else item)[:40]
            raise _action_error(index, _("unknown action %(type)s.", type=kind))
        kind, value = item["type"], item.get("value")
        if kind == "set_status":
            if value not in [s.value for s in TicketStatus]:
                raise _action_error(index, _("unknown status."))
        elif kind == "set_priority":
            if conditions.priority_rank(value) is None:
                raise _action_error(index, _("unknown priority."))
            value = conditions.priority_rank(value)
        elif kind == "set_team":
            if value not in (None, "", "none") and _team(session, value) is None:
                raise _action_error(index, _("no such team."))
        elif kind == "assign":
            if value not in ("round_robin", "none", None, "") and _agent(session, value) is None:
                raise _action_error(index, _("no such agent."))
        elif kind in ("add_tags", "remove_tags"):
            names = value if isinstance(value, list) else str(value or "").split(",")
            value = [n for n in (tags.normalize_tag(str(v)) for v in names) if n]
            if not value:
                raise _action_error(index, _("no tags."))
        elif kind == "set_custom":
            if not isinstance(value, Mapping) or not value:
                raise _action_error(index, _("no field values."))
            try:
                custom_fields.clean_values(custom_fields.fields_for(session, "ticket"), value)
            except custom_fields.FieldErrors as exc:
                raise _action_error(index, str(exc)) from None
            value = dict(value)
        elif kind == "add_note":
            value = str(value or "").strip()
            if not value:
                raise _action_error(index, _("a note cannot be empty."))
        elif kind == "notify":
            if value not in ("assignee", "team"):
                raise _action_error(index, _("notify the assignee or the team."))
        elif kind == "send_email":
            if not isinstance(value, Mapping) or value.get("to") not in (
                "customer",
                "assignee",
                "team",
            ):
                raise _action_error(index, _("send to the customer, the assignee or the team."))
            subject, body = _text_pair(value.get("subject")), _text_pair(value.get("body"))
            if not (subject["en"] or subject["bn"]) or not (body["en"] or body["bn"]):
                raise _action_error(index, _("a mail needs a subject and a text."))
            for text in (*subject.values(), *body.values()):
                _check_template(text)
            value = {"to": value["to"], "subject": subject, "body": body}
        elif kind == "webhook":
            from helpdesk.models import Webhook

            if session.get(Webhook, _int(value)) is None:
                raise _action_error(index, _("no such webhook."))
            value = _int(value)
        elif kind == "apply_macro":
            if session.get(Macro, _int(value)) is None:
                raise _action_error(index, _("no such macro."))
            value = _int(value)
        out.append({"type": kind, "value": value})
    return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _team(session: Session, value: Any) -> Team | None:
    text = str(value or "").strip()
    if text.isdigit():
        return session.get(Team, int(text))
    return session.scalar(select(Team).where(func.lower(Team.name) == text.lower()))


def _agent(session: Session, value: Any) -> Agent | None:
    text = str(value or "").strip()
    if text.isdigit():
        found = session.get(Agent, int(text))
    else:
        found = session.scalar(select(Agent).where(func.lower(Agent.email) == text.lower()))
    return found if found is not None and found.active else None


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())[:120]
    if not name:
        raise ServiceError(_("A rule needs a name."), code="name_required")
    return name


def _state(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "event": rule.event,
        "after_hours": rule.after_hours,
        "conditions": rule.conditions,
        "actions": rule.actions,
        "position": rule.position,
        "stop": rule.stop,
        "active": rule.active,
    }


def _check_when(
    kind: RuleKind, event: str | None, after_hours: Any
) -> tuple[str | None, int | None]:
    if kind == RuleKind.EVENT:
        if event not in EVENTS:
            raise ServiceError(
                _("Unknown event: %(event)s", event=str(event)[:40]), code="invalid_event"
            )
        return event, None
    try:
        hours = int(after_hours)
    except (TypeError, ValueError):
        hours = 0
    if not 0 < hours <= MAX_AFTER_HOURS:
        raise ServiceError(
            _("A time rule runs a whole number of hours after the last update."),
            code="invalid_after_hours",
        )
    return None, hours


def create_rule(
    session: Session,
    actor: Agent | None,
    *,
    name: str,
    kind: RuleKind | str = RuleKind.EVENT,
    event: str | None = None,
    after_hours: int | None = None,
    conditions_: Any = None,
    actions: Any,
    position: int | None = None,
    stop: bool = False,
    active: bool = True,
) -> Rule:
    try:
        kind = RuleKind(kind)
    except ValueError:
        raise ServiceError(_("Unknown kind of rule."), code="invalid_kind") from None
    name = _clean_name(name)
    if session.scalar(select(Rule.id).where(Rule.name == name)):
        raise Conflict(_("A rule named %(name)s exists already.", name=name), code="name_taken")
    event, hours = _check_when(kind, event, after_hours)
    if position is None:
        last = session.scalar(select(func.max(Rule.position)))
        position = (last + 1) if last is not None else 0
    rule = Rule(
        name=name,
        kind=kind,
        event=event,
        after_hours=hours,
        conditions=conditions.check(conditions_),
        actions=check_actions(session, actions),
        position=int(position),
        stop=bool(stop),
        active=bool(active),
        cursor_id=0,
        run_count=0,
    )
    session.add(rule)
    session.flush()
    stream.record(session, "rule.created", "rule", rule.id, actor, **_state(rule))
    unit_of_work(session).after_commit(forget)
    return rule


def update_rule(
    session: Session, rule: Rule, actor: Agent | None, **changes: Any
) -> dict[str, Any]:
    """Change what is given (name, event, after_hours, conditions, actions, position, stop,
    active; the kind stays)."""
    before = _state(rule)
    if "name" in changes:
        # Checked before it is set: the query would autoflush a taken name into the unique
        # index first (an IntegrityError instead of the 409).
        name = _clean_name(changes["name"])
        other = session.scalar(select(Rule.id).where(Rule.name == name))
        if other is not None and other != rule.id:
            raise Conflict(_("A rule named %(name)s exists already.", name=name), code="name_taken")
        rule.name = name
    if "event" in changes or "after_hours" in changes:
        rule.event, rule.after_hours = _check_when(
            rule.kind,
            changes.get("event", rule.event),
            changes.get("after_hours", rule.after_hours),
        )
    if "conditions" in changes:
        rule.conditions = conditions.check(changes["conditions"])
    if "actions" in changes:
        rule.actions = check_actions(session, changes["actions"])
    for name in ("position",):
        if name in changes:
            rule.position = int(changes[name])
    for name in ("stop", "active"):
        if name in changes:
            setattr(rule, name, bool(changes[name]))
    session.flush()
    after = _state(rule)
    diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if diff:
        stream.record(session, "rule.updated", "rule", rule.id, actor, changes=diff)
        unit_of_work(session).after_commit(forget)
    return diff


def delete_rule(session: Session, rule: Rule, actor: Agent | None) -> None:
    stream.record(session, "rule.deleted", "rule", rule.id, actor, name=rule.name)
    session.delete(rule)
    session.flush()
    unit_of_work(session).after_commit(forget)


def rules(session: Session) -> list[Rule]:
    return list(session.scalars(select(Rule).order_by(Rule.kind, Rule.position, Rule.id)))


# --- the active rules, kept per process ----------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    id: int
    name: str
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    stop: bool


CACHE_SECONDS = 30.0
_cached: tuple[float, dict[str, list[Loaded]]] | None = None


def forget() -> None:
    global _cached
    _cached = None


def event_rules(session: Session) -> dict[str, list[Loaded]]:
    """The active triggers by event name, in order (kept 30 s per process; a change made here
    is seen at its commit)."""
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] > CACHE_SECONDS:
        found: dict[str, list[Loaded]] = {}
        for rule in session.scalars(
            select(Rule)
            .where(Rule.kind == RuleKind.EVENT, Rule.active.is_(True))
            .order_by(Rule.position, Rule.id)
        ):
            found.setdefault(rule.event or "", []).append(
                Loaded(rule.id, rule.name, rule.conditions or [], rule.actions or [], rule.stop)
            )
        _cached = (now, found)
    return _cached[1]


# --- running -------------------------------------------------------------------------------------


def _render(text: str, ticket: Ticket) -> str:
    from helpdesk.services.macros import _context
    from helpdesk.services.macros import _render as render

    try:
        return render(text, _context(ticket, ticket.assignee))
    except Exception:  # a template that rendered when saved: keep the text as written
        return text


def _note(session: Session, ticket: Ticket, text: str, rule: Loaded) -> None:
    append_message(
        session,
        ticket,
        direction=Direction.OUTBOUND,
        kind=MessageKind.NOTE,
        author=None,
        text=_render(text, ticket),
        internal=True,
        meta={"rule": {"id": rule.id, "name": rule.name}},
    )
    announce(session, ticket)


def _mail(session: Session, ticket: Ticket, value: Mapping[str, Any], rule: Loaded) -> int:
    from helpdesk.services.outbox import queue_mail

    recipients: list[tuple[str, str | None, int | None]] = []  # address, language, customer id
    if value["to"] == "customer":
        customer = ticket.customer
        if customer.email:
            recipients.append((customer.email, customer.language or ticket.language, customer.id))
    elif value["to"] == "assignee":
        if ticket.assignee is not None and ticket.assignee.active:
            recipients.append((ticket.assignee.email, ticket.assignee.language, None))
    elif ticket.team is not None:
        recipients.extend((a.email, a.language, None) for a in ticket.team.members if a.active)
    for address, language, customer_id in recipients:
        lang = "bn" if language == "bn" else "en"
        other = "en" if lang == "bn" else "bn"
        subject = value["subject"].get(lang) or value["subject"].get(other) or ""
        body = value["body"].get(lang) or value["body"].get(other) or ""
        queue_mail(
            session,
            RULE_MAIL,
            address,
            customer_id=customer_id,
            ticket_id=ticket.id,
            language=lang,
            payload={
                "subject": _render(subject, ticket),
                "body": _render(body, ticket),
                "rule": {"id": rule.id, "name": rule.name},
                "to": value["to"],
            },
        )
    return len(recipients)


def _notify(session: Session, ticket: Ticket, to: str, rule: Loaded) -> int:
    """An in-app notification (and the live badge) for the assignee or the team's members:
    escalation ("SLA breached → notify the team")."""
    from helpdesk.models import Notification
    from helpdesk.services import events

    if to == "assignee":
        people = [ticket.assignee] if ticket.assignee is not None else []
    else:
        people = list(ticket.team.members) if ticket.team is not None else []
    agents = [a for a in people if a is not None and a.active]
    for agent in agents:
        session.add(Notification(agent_id=agent.id, kind="rule", ticket_id=ticket.id))
        # Payload of ``notification`` from a rule (room agent:<id>):
        # {kind: "rule", rule, ticket_id, number, subject}.
        events.send_event_on_commit(
            session,
            "notification",
            {
                "kind": "rule",
                "rule": rule.name,
                "ticket_id": ticket.id,
                "number": ticket.number,
                "subject": ticket.subject,
            },
            rooms=[f"agent:{agent.id}"],
        )
    return len(agents)


def _webhook(session: Session, ticket: Ticket, webhook_id: int, rule: Loaded) -> None:
    """The ticket to one webhook, whatever it subscribes to: an event of its own on the stream
    (``rule.webhook``) that the fan-out delivers to that webhook only."""
    stream.record(
        session,
        "rule.webhook",
        "ticket",
        ticket.id,
        None,
        ticket_id=ticket.id,
        webhook_id=webhook_id,
    )


def run_actions(session: Session, ticket: Ticket, rule: Loaded) -> None:
    """``rule``'s actions on ``ticket``, in order, as the system (the history names the rule)."""
    for action in rule.actions:
        kind, value = action["type"], action["value"]
        if kind == "set_status":
            tickets.set_status(session, ticket, TicketStatus(value), None)
        elif kind == "set_priority":
            tickets.set_priority(session, ticket, int(value), None)
        elif kind == "set_team":
            tickets.set_team(session, ticket, _team(session, value), None)
        elif kind == "assign":
            if value == "round_robin":
                from helpdesk.services.assignment import auto_assign

                auto_assign(session, ticket)
            else:
                tickets.assign_ticket(
                    session,
                    ticket,
                    None if value in (None, "", "none") else _agent(session, value),
                    None,
                )
        elif kind == "add_tags":
            tags.add_tags(session, ticket, value, None)
        elif kind == "remove_tags":
            tags.remove_tags(session, ticket, value, None)
        elif kind == "set_custom":
            custom_fields.set_values(session, ticket, value, None, strict_keys=False)
        elif kind == "add_note":
            _note(session, ticket, str(value), rule)
        elif kind == "notify":
            _notify(session, ticket, str(value), rule)
        elif kind == "send_email":
            _mail(session, ticket, value, rule)
        elif kind == "webhook":
            _webhook(session, ticket, int(value), rule)
        elif kind == "apply_macro":
            macro = session.get(Macro, int(value))
            if macro is not None:
                _macro_actions(session, ticket, macro)


def _macro_actions(session: Session, ticket: Ticket, macro: Macro) -> None:
    actions = macro.actions or {}
    if "team_id" in actions:
        tickets.set_team(session, ticket, session.get(Team, actions["team_id"]), None)
    if "assignee" in actions and actions["assignee"] != "me":
        tickets.assign_ticket(session, ticket, session.get(Agent, actions["assignee"]), None)
    if "priority" in actions:
        tickets.set_priority(session, ticket, actions["priority"], None)
    if "status" in actions:
        tickets.set_status(session, ticket, actions["status"], None)
    if actions.get("add_tags"):
        tags.add_tags(session, ticket, actions["add_tags"], None)


def _message_text(session: Session, event: stream.StoredEvent) -> str | None:
    if event.name != "message.created":
        return None
    return session.scalar(select(Message.body_text).where(Message.id == event.subject_id))


def facts_for(
    session: Session, ticket: Ticket, event: stream.StoredEvent | None, now: datetime
) -> conditions.Facts:
    extra: dict[str, Any] = {}
    if event is not None:
        extra["changed"] = sorted((event.data.get("changes") or {}).keys())
        extra["sla_target"] = event.data.get("target")

    def first_text() -> str:
        return (
            session.scalar(
                select(Message.body_text)
                .where(Message.ticket_id == ticket.id)
                .order_by(Message.id)
                .limit(1)
            )
            or ""
        )

    def within(when: datetime) -> bool:
        # The default calendar, read when a condition asks (the SLA's cache has it when a
        # policy uses it).
        schedule = sla.cached(session).default_schedule or business_hours.Schedule.of(
            business_hours.default_calendar(session)
        )
        return business_hours.is_open(schedule, when)

    return conditions.Facts(
        ticket,
        text=_message_text(session, event) if event is not None else None,
        actor_type=event.actor_type if event is not None else None,
        now=now,
        business_hours=within,
        first_text=first_text,
        extra=extra,
    )


def _run(
    session: Session,
    ticket: Ticket,
    candidates: Sequence[Loaded],
    facts: conditions.Facts,
    chain: tuple[int, ...],
) -> list[int]:
    """The rules of one event or sweep on one ticket; returns the ids of those that fired."""
    fired: list[int] = []
    for rule in candidates:
        if rule.id in chain:
            continue  # never again on what its own actions caused
        if not conditions.matches(rule.conditions, facts):
            continue
        try:
            with session.begin_nested(), acting(rule.id, rule.name, chain):
                run_actions(session, ticket, rule)
        except ServiceError as exc:
            log.warning("rule %s (%s) on ticket %s: %s", rule.id, rule.name, ticket.id, exc)
            continue
        fired.append(rule.id)
        if rule.stop:
            break
    return fired


def _count_runs(session: Session, rule_ids: Sequence[int], now: datetime) -> None:
    for rule_id in rule_ids:
        row = session.get(Rule, rule_id)
        if row is not None:
            row.run_count = (row.run_count or 0) + 1
            row.last_run_at = now


def on_event(session: Session, event: stream.StoredEvent) -> None:
    """The stream consumer: the triggers of ``event``'s name on its ticket."""
    if event.name not in EVENTS or event.ticket_id is None:
        return
    candidates = event_rules(session).get(event.name)
    if not candidates:
        return
    chain = tuple(int(i) for i in event.data.get("rule_chain") or ())
    if len(chain) >= MAX_CHAIN:
        log.warning("rule chain %s stopped at event %s", chain, event.id)
        return
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None or ticket.merged_into_id is not None:
        return
    now = utcnow()
    fired = _run(session, ticket, candidates, facts_for(session, ticket, event, now), chain)
    _count_runs(session, fired, now)


# --- time rules ----------------------------------------------------------------------------------


def sweep(session: Session, rule: Rule, now: datetime, limit: int = TIME_PAGE) -> int:
    """One page of a time rule: the next active tickets (after its cursor) quiet for its hours,
    through the (active, updated_at, id) index; returns how many it looked at."""
    assert rule.after_hours is not None
    edge = now - timedelta(hours=rule.after_hours)
    q = (
        select(Ticket)
        .where(Ticket.active.is_(True), Ticket.updated_at <= edge)
        .order_by(Ticket.updated_at, Ticket.id)
        .limit(limit)
        # What conditions read, for the page at once (not a query per ticket and relation).
        .options(
            selectinload(Ticket.tags),
            joinedload(Ticket.team),
            joinedload(Ticket.assignee),
            joinedload(Ticket.customer).joinedload(Customer.organization),
        )
    )
    if rule.cursor_at is not None:
        q = q.where(tuple_(Ticket.updated_at, Ticket.id) > (rule.cursor_at, rule.cursor_id))
    found = list(session.scalars(q))
    if not found:
        return 0
    loaded = Loaded(rule.id, rule.name, rule.conditions or [], rule.actions or [], rule.stop)
    fired = 0
    for ticket in found:
        # The cursor first: what the actions do moves the ticket's updated_at on.
        rule.cursor_at, rule.cursor_id = ticket.updated_at, ticket.id
        if ticket.merged_into_id is not None:
            continue
        fired += len(_run(session, ticket, [loaded], facts_for(session, ticket, None, now), ()))
    if fired:
        rule.run_count = (rule.run_count or 0) + fired
        rule.last_run_at = now
    return len(found)


def run_time_rules(app: Flask, budget: float = 0.5) -> int:
    """The worker's task: each active time rule's next page (a transaction per rule and page)
    while there is work and time."""
    started = time.monotonic()
    looked = 0
    # A read (no write lock on SQLite): most rounds there is no time rule or nothing to do.
    with read_only_transactions(), db.transaction(app) as session:
        ids = list(
            session.scalars(
                select(Rule.id)
                .where(Rule.kind == RuleKind.TIME, Rule.active.is_(True))
                .order_by(Rule.position, Rule.id)
            )
        )
    for rule_id in ids:
        while time.monotonic() - started < budget:
            try:
                with db.transaction(app) as session:
                    rule = session.get(Rule, rule_id, with_for_update=True)
                    if rule is None or not rule.active:
                        break
                    count = sweep(session, rule, utcnow())
            except Exception:
                log.exception("time rule %s failed", rule_id)
                break
            looked += count
            if count < TIME_PAGE:
                break
    return looked


# --- preview -------------------------------------------------------------------------------------


def preview(
    session: Session, conditions_: Any, *, scan: int = 2000, limit: int = 50
) -> tuple[list[Ticket], int]:
    """The active tickets (most recently updated first, up to ``scan`` of them) that the
    conditions match now: up to ``limit`` of them, and how many were looked at."""
    checked = conditions.check(conditions_)
    now = utcnow()
    rows = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.active.is_(True))
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
            .limit(scan)
        )
    )
    matched = [t for t in rows if conditions.matches(checked, facts_for(session, t, None, now))]
    return matched[:limit], len(rows)


def get_rule(session: Session, rule_id: int) -> Rule:
    rule = session.get(Rule, rule_id)
    if rule is None:
        raise NotFound(_("Not found."))
    return rule
