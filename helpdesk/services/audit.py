"""Writing audit events. Every state change of a ticket records one."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from helpdesk.models import Agent, AuditEvent, Customer, Ticket
from helpdesk.services.rule_context import current as current_rule

Actor = Agent | Customer | None


def new_event(ticket: Ticket | None, actor: Actor, action: str, **data: Any) -> AuditEvent:
    """The row of :func:`record`, not yet added (``messages.record_now`` writes it at once).
    Written while an automation rule acts, it names the rule (services/rule_context.py)."""
    rule = current_rule()
    if rule is not None:
        data = {**data, "rule": rule.label()}
    return AuditEvent(
        ticket_id=ticket.id if ticket is not None else None,
        actor_agent_id=actor.id if isinstance(actor, Agent) else None,
        actor_customer_id=actor.id if isinstance(actor, Customer) else None,
        action=action,
        data=data,
    )


def record(
    session: Session, ticket: Ticket | None, actor: Actor, action: str, **data: Any
) -> AuditEvent:
    event = new_event(ticket, actor, action, **data)
    session.add(event)
    return event
