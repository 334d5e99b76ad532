"""Ticket tags: normalised names (lower case, dashes), created on first use."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import (
    Tag,
    Ticket,
)
from helpdesk.services import audit, stream
from helpdesk.services.announcements import announce
from helpdesk.services.audit import Actor
from helpdesk.services.errors import ServiceError
from helpdesk.services.messages import touch

MAX_TAG_LENGTH = 64


def normalize_tag(name: str) -> str:
    tag = " ".join(name.strip().lower().split()).replace(" ", "-")
    if not tag:
        raise ServiceError(_("A tag cannot be empty."))
    if len(tag) > MAX_TAG_LENGTH:
        raise ServiceError(_("A tag can have at most %(n)d characters.", n=MAX_TAG_LENGTH))
    return tag


def get_or_create_tag(session: Session, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        # A concurrent creator of the same tag would violate the unique index; a savepoint keeps
        # the outer transaction usable so we can read the winner's row.
        try:
            with session.begin_nested():
                tag = Tag(name=name)
                session.add(tag)
        except Exception:
            tag = session.scalar(select(Tag).where(Tag.name == name))
            if tag is None:
                raise
    return tag


def set_tags(session: Session, ticket: Ticket, names: Iterable[str], actor: Actor) -> None:
    wanted = sorted({normalize_tag(n) for n in names if n.strip()})
    current = sorted(t.name for t in ticket.tags)
    if wanted == current:
        return
    ticket.tags = [get_or_create_tag(session, n) for n in wanted]
    touch(ticket)
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    audit.record(session, ticket, actor, "ticket.tags", added=added, removed=removed)
    stream.ticket_changed(session, ticket.id, actor, "tags", current, wanted)
    announce(session, ticket)


def add_tags(session: Session, ticket: Ticket, names: Iterable[str], actor: Actor) -> None:
    set_tags(session, ticket, [*(t.name for t in ticket.tags), *names], actor)


def remove_tags(session: Session, ticket: Ticket, names: Iterable[str], actor: Actor) -> None:
    drop = {normalize_tag(n) for n in names if n.strip()}
    set_tags(session, ticket, [t.name for t in ticket.tags if t.name not in drop], actor)
