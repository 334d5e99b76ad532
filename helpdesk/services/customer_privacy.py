"""A customer's data-protection requests, admins only: **export** everything stored about one
customer (a zip: ``customer.json`` plus the attachments), and **erase** a customer.

Erasing keeps the tickets (their numbers, status, dates and the team's statistics) and the
audit log, and removes the person from them:

- every message on the customer's own tickets and every message they wrote elsewhere is
  redacted (text, HTML, subject, recipients, mail headers; the raw mail deleted), the tickets'
  subjects too;
- their attachments' rows are deleted, and the files on disk once no other message refers to
  the same content (files are stored once by content hash);
- identities (addresses, chat visitor ids, portal logins) and every row the schema deletes with
  a customer (portal accounts and sign-in tokens, chat sessions, queued mail to them, tasks
  about them, participations) are deleted; links the schema would clear (KB votes) are cleared;
  the record keeps only its id (``#42``);
- the stream's earlier events about the customer lose their data (names, addresses).

What remains: one audit line and one ``customer.erased`` event saying who erased which record
(by id) and when, with counts; neither holds personal data.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import Base, utcnow
from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    Attachment,
    Customer,
    CustomerIdentity,
    CustomField,
    Event,
    FieldType,
    Message,
    SatisfactionRating,
    Ticket,
)
from helpdesk.services import attachments, audit, effects, stream
from helpdesk.services.errors import Forbidden

REDACTED = "[erased]"
# Foreign keys to customers.id that erasing keeps: the tickets stay the customer's (an
# anonymous record), messages their author's, the audit line its actor's.
_KEEP = {
    ("tickets", "customer_id"),
    ("messages", "author_customer_id"),
    # A satisfaction rating stays the agent's (its score, for the reports); its comment goes.
    ("satisfaction_ratings", "customer_id"),
}
_KEEP_AUDIT = ("audit_events", "actor_customer_id")


def _require_admin(actor: Agent) -> None:
    if not actor.is_admin:
        raise Forbidden(_("Only admins may export or erase a customer's data."))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _messages_query(customer_id: int) -> Any:
    own = select(Ticket.id).where(Ticket.customer_id == customer_id)
    return or_(Message.ticket_id.in_(own), Message.author_customer_id == customer_id)


def export_customer(session: Session, customer: Customer, actor: Agent) -> bytes:
    """A zip of ``customer.json`` and ``attachments/<message id>/<file name>``; audited."""
    _require_admin(actor)
    messages = list(
        session.scalars(
            select(Message)
            .where(_messages_query(customer.id))
            .order_by(Message.ticket_id, Message.id)
            .options(
                selectinload(Message.attachments),
                selectinload(Message.author_agent),
                selectinload(Message.ticket),
            )
        )
    )
    buffer = io.BytesIO()
    by_ticket: dict[int, dict[str, Any]] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for m in messages:
            t = m.ticket
            entry = by_ticket.setdefault(
                t.id,
                {
                    "number": t.number,
                    "subject": t.subject,
                    "status": t.status.value,
                    "channel": t.channel.value,
                    "requester": t.customer_id == customer.id,
                    "created_at": _iso(t.created_at),
                    "custom": t.custom or {},
                    "messages": [],
                },
            )
            files = []
            for a in m.attachments:
                name = f"attachments/{m.id}/{a.id}-{attachments.clean_filename(a.filename)}"
                path = attachments.path_for(a.sha256)
                if path.exists():
                    archive.write(path, name)
                files.append(
                    {
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                        "file": name if path.exists() else None,
                    }
                )
            entry["messages"].append(
                {
                    "id": m.id,
                    "created_at": _iso(m.created_at),
                    "direction": m.direction.value,
                    "kind": m.kind.value,
                    "internal": m.internal,
                    "author": (
                        "customer"
                        if m.author_customer_id == customer.id
                        else (m.author_agent.name if m.author_agent else None)
                    ),
                    "subject": m.subject,
                    "text": m.body_text,
                    "recipients": m.recipients,
                    "attachments": files,
                }
            )
        document = {
            "exported_at": _iso(utcnow()),
            "exported_by": actor.email,
            "customer": {
                "id": customer.id,
                "name": customer.name,
                "email": customer.email,
                "language": customer.language,
                "organization": customer.organization.name if customer.organization else None,
                "notes": customer.notes,
                "custom": customer.custom or {},
                "created_at": _iso(customer.created_at),
                "identities": [
                    {
                        "kind": i.kind.value,
                        "value": i.value,
                        "verified": i.verified,
                        "created_at": _iso(i.created_at),
                    }
                    for i in customer.identities
                ],
            },
            "tickets": list(by_ticket.values()),
        }
        archive.writestr("customer.json", json.dumps(document, ensure_ascii=False, indent=2))
    audit.record(session, None, actor, "customer.exported", customer_id=customer.id)
    return buffer.getvalue()


def erase_customer(session: Session, customer: Customer, actor: Agent) -> dict[str, int]:
    """Erase the person behind ``customer`` (module docstring); returns the counts recorded."""
    _require_admin(actor)
    cid = customer.id
    session.flush()
    message_ids = list(session.scalars(select(Message.id).where(_messages_query(cid))))
    ticket_ids = list(session.scalars(select(Ticket.id).where(Ticket.customer_id == cid)))
    files = list(
        session.execute(
            select(Attachment.id, Attachment.sha256).where(Attachment.message_id.in_(message_ids))
        )
    )
    raws = {
        sha
        for sha in session.scalars(
            select(Message.raw_sha256).where(
                Message.id.in_(message_ids), Message.raw_sha256.is_not(None)
            )
        )
        if sha
    }
    # Through the ORM's bulk statements, so the ticket search index rewrites these tickets.
    session.execute(delete(Attachment).where(Attachment.message_id.in_(message_ids)))
    session.execute(
        update(Message)
        .where(Message.id.in_(message_ids))
        .values(
            body_text=REDACTED,
            body_html=None,
            full_text=None,
            subject=None,
            recipients=[],
            references=[],
            in_reply_to=None,
            meta={},
            raw_sha256=None,
            delivery_error=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Ticket)
        .where(Ticket.id.in_(ticket_ids))
        .values(subject=REDACTED)
        .execution_options(synchronize_session=False)
    )
    _erase_free_text_fields(session, ticket_ids)
    session.execute(
        update(SatisfactionRating)
        .where(SatisfactionRating.customer_id == cid)
        .values(comment="")
        .execution_options(synchronize_session=False)
    )
    identities = len(customer.identities)
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name != "customers":
                continue
            key = (table.name, fk.parent.name)
            if key in _KEEP or key == _KEEP_AUDIT:
                continue
            # What the schema deletes with a customer goes (their logins, chats, queued mail,
            # tasks about them); what it would unlink is unlinked (KB votes).
            if (fk.ondelete or "").upper() == "CASCADE" or not fk.parent.nullable:
                if table.name != "customer_identities":
                    session.execute(delete(table).where(fk.parent == cid))
            else:
                session.execute(
                    update(table).where(fk.parent == cid).values({fk.parent.name: None})
                )
    session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id == cid))
    session.execute(
        update(Event)
        .where(Event.subject_type == "customer", Event.subject_id == cid)
        .values(data={"erased": True})
        .execution_options(synchronize_session=False)
    )
    customer.name = ""
    customer.email = None
    customer.language = None
    customer.notes = ""
    customer.custom = None  # custom fields about the person: all of them go
    customer.organization_id = None
    session.flush()
    session.expire(customer)
    session.expire_all()
    # Files are shared by content: delete only those no remaining row refers to.
    hashes = {sha for _id, sha in files} | raws
    still = set()
    if hashes:
        still = set(
            session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(hashes)))
        ) | set(session.scalars(select(Message.raw_sha256).where(Message.raw_sha256.in_(hashes))))
    paths = [attachments.path_for(sha) for sha in sorted(hashes - still)]
    effects.on_commit(session, lambda: _unlink(paths))
    counts = {
        "tickets": len(ticket_ids),
        "messages": len(message_ids),
        "attachments": len(files),
        "identities": identities,
    }
    audit.record(session, None, actor, "customer.erased", customer_id=cid, **counts)
    stream.record(session, "customer.erased", "customer", cid, actor, **counts)
    return counts


def _erase_free_text_fields(session: Session, ticket_ids: list[int]) -> None:
    """The person's words in their tickets' custom fields (text, long text, web addresses) go;
    choices (a dropdown's option, a checkbox, a number, a date) stay for the reports."""
    free = {
        f.key
        for f in session.scalars(select(CustomField).where(CustomField.object_type == "ticket"))
        if f.type in (FieldType.TEXT, FieldType.LONG_TEXT, FieldType.URL)
    }
    if not free or not ticket_ids:
        return
    for ticket_id, values in session.execute(
        select(Ticket.id, Ticket.custom).where(
            Ticket.id.in_(ticket_ids), Ticket.custom.is_not(None)
        )
    ):
        kept = {k: v for k, v in (values or {}).items() if k not in free}
        if kept != values:
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket_id)
                .values(custom=kept or None)
                .execution_options(synchronize_session=False)
            )


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
