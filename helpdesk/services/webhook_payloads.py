"""What a webhook delivery carries: the body ``{"id": event id, "event", "created_at", "data":
the object as the API's GET returns it, "actor", "details": the event's own data}`` and the key
that orders deliveries (the ticket).

``data`` comes from the serializer registered for the event's subject type
(:func:`register_payload`: ``helpdesk/api/setup.py`` registers the ticket, customer and
organization, ``kb/api.py`` the article and category, ``channels/chat/api.py`` the chat), else
the event's data (a ticket: :func:`helpdesk.services.queue.ticket_row`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from helpdesk.models import Ticket
from helpdesk.services import stream
from helpdesk.services.queue import ticket_row

PayloadFn = Callable[[Session, int], dict[str, Any] | None]
_payloads: dict[str, PayloadFn] = {}


def register_payload(subject_type: str, fn: PayloadFn) -> None:
    """``data`` of a delivery about a ``subject_type`` (``"ticket"``, ``"message"``, ...):
    ``fn(session, subject_id)`` returns the object as the API's GET returns it (None: gone)."""
    _payloads[subject_type] = fn


_TICKET_OPTIONS = (
    joinedload(Ticket.customer),
    joinedload(Ticket.assignee),
    joinedload(Ticket.team),
    selectinload(Ticket.tags),
)


def _ticket_payload(session: Session, ticket_id: int) -> dict[str, Any] | None:
    ticket = session.get(Ticket, ticket_id, options=list(_TICKET_OPTIONS))
    return ticket_row(ticket) if ticket is not None else None


register_payload("ticket", _ticket_payload)


def prefetch_tickets(session: Session, ticket_ids: Collection[int]) -> list[Ticket]:
    """The tickets a batch of events will carry, in one query, when the core's serializer
    makes their ``data`` (it then finds them in the session's identity map); the caller holds
    the returned list for as long as the batch runs, since the identity map's references are
    weak. Nothing is read for another serializer (the API's loads what it needs)."""
    if not ticket_ids or _payloads.get("ticket") is not _ticket_payload:
        return []
    return list(
        session.scalars(
            select(Ticket).where(Ticket.id.in_(ticket_ids)).options(*_TICKET_OPTIONS)
        ).unique()
    )


def _data(session: Session, event: stream.StoredEvent) -> dict[str, Any]:
    fn = _payloads.get(event.subject_type)
    data = fn(session, event.subject_id) if fn is not None else None
    if data is not None:
        return data
    # No serializer, or the object is gone: what the event itself says.
    data = {"type": event.subject_type, "id": event.subject_id, **event.data}
    if event.ticket_id is not None:
        ticket = session.get(Ticket, event.ticket_id)
        data["ticket"] = (
            {"id": ticket.id, "number": ticket.number}
            if ticket is not None
            else {"id": event.ticket_id}
        )
    return data


def envelope(session: Session, event: stream.StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event": event.name,
        "created_at": event.occurred_at.isoformat(),
        "data": _data(session, event),
        "actor": {"type": event.actor_type, "id": event.actor_id},
        "details": event.data,
    }


def ordering_key(event: stream.StoredEvent) -> str:
    if event.ticket_id is not None:
        return f"ticket:{event.ticket_id}"
    return f"{event.subject_type}:{event.subject_id}"
