"""Resolving the person behind an identity: one Customer however they came in."""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import Agent, Customer, CustomerIdentity, IdentityKind, Organization
from helpdesk.services import organizations, stream
from helpdesk.services.errors import Conflict, ServiceError

# What only a display name, a comment, a quoted local part or a list can contain: without any
# of these an address is its own parse (the parser hands bare addresses over), and parseaddr,
# a few hundred microseconds of pure Python, is not needed. A batch of mail asks for thousands.
_NEEDS_PARSING = re.compile(r'[\s<>"(),;:\\\[\]]')


MAX_ADDRESS_LENGTH = 320


def normalize_email(address: str) -> str:
    """Lower-case the whole address (RFC 5321 allows case-sensitive local parts, but no
    mail provider in use treats them so, and two customers for one person is the worse bug)."""
    stripped = address.strip()
    if stripped.count("@") != 1 or _NEEDS_PARSING.search(stripped):
        _name, addr = parseaddr(stripped)
    else:
        addr = stripped
    addr = addr.strip().lower()
    if (
        "@" not in addr
        or addr.startswith("@")
        or addr.endswith("@")
        or " " in addr
        # customer_identities.value: longer cannot be stored (PostgreSQL refuses it), and no
        # real address is (RFC 5321 allows 254).
        or len(addr) > MAX_ADDRESS_LENGTH
    ):
        raise ServiceError(_("Not an email address: %(address)s", address=address))
    return addr


def find_by_identity(session: Session, kind: IdentityKind, value: str) -> Customer | None:
    if kind == IdentityKind.EMAIL:
        value = normalize_email(value)
    return session.scalar(
        select(Customer)
        .join(CustomerIdentity)
        .where(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
    )


MAX_NAME_LENGTH = 200  # customers.name


def clip_name(name: str | None) -> str:
    """A display name as stored: whitespace collapsed, at most the column's length (a mail's
    From name can be any length; PostgreSQL would refuse the row and the mail would land in
    quarantine)."""
    return " ".join((name or "").split())[:MAX_NAME_LENGTH]


def resolve_customer(
    session: Session,
    kind: IdentityKind | str,
    value: str,
    *,
    name: str | None = None,
    language: str | None = None,
) -> Customer:
    """The Customer owning this identity, created on first contact.

    An email address seen first by mail, then on the portal, then in a chat pre-chat form
    resolves to the same Customer every time.
    """
    kind = IdentityKind(kind)
    if kind == IdentityKind.EMAIL:
        value = normalize_email(value)
    elif not value:
        raise ServiceError(_("An identity cannot be empty."))
    customer = find_by_identity(session, kind, value)
    if customer is not None:
        fill_in(customer, name, language)
        return customer
    customer = new_customer(kind, value, name, language)
    # A new customer from an organization's email domain joins it, whatever the channel.
    organizations.assign_by_domain(session, [customer])
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:
        # Another transaction stored this identity after we looked (on PostgreSQL both can
        # look before either commits; the unique index made us wait for it): theirs it is.
        existing = find_by_identity(session, kind, value)
        if existing is None:
            raise
        fill_in(existing, name, language)
        return existing
    record_created(session, customer)
    return customer


def record_created(session: Session, customer: Customer) -> None:
    """The stream's ``customer.created`` for a customer just stored (it has its id)."""
    stream.record(
        session,
        "customer.created",
        "customer",
        customer.id,
        None,
        name=customer.name,
        email=customer.email,
        language=customer.language,
        identities=[{"kind": i.kind.value, "value": i.value} for i in customer.identities],
        organization_id=customer.organization_id,
    )


def fill_in(customer: Customer, name: str | None, language: str | None) -> None:
    """What a returning sender adds to their record: a name or a language it did not have."""
    if name and not customer.name:
        customer.name = clip_name(name)
    if language and not customer.language:
        customer.language = language


def new_customer(
    kind: IdentityKind, value: str, name: str | None = None, language: str | None = None
) -> Customer:
    """The Customer (with its identity) :func:`resolve_customer` creates on first contact, not
    yet added or flushed; ``value`` already normalised. For batch paths that looked the
    identity up already and flush many at once."""
    customer = Customer(
        name=clip_name(name),
        email=value if kind == IdentityKind.EMAIL else None,
        language=language,
    )
    customer.identities.append(CustomerIdentity(kind=kind, value=value))
    return customer


def add_identity(
    session: Session, customer: Customer, kind: IdentityKind | str, value: str
) -> CustomerIdentity:
    kind = IdentityKind(kind)
    if kind == IdentityKind.EMAIL:
        value = normalize_email(value)
    owner = find_by_identity(session, kind, value)
    if owner is not None and owner.id != customer.id:
        raise Conflict(_("This identity belongs to another customer."), code="identity_taken")
    for identity in customer.identities:
        if identity.kind == kind and identity.value == value:
            return identity
    identity = CustomerIdentity(kind=kind, value=value)
    customer.identities.append(identity)
    if kind == IdentityKind.EMAIL and not customer.email:
        customer.email = value
    session.flush()
    return identity


def create_customer(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    language: str | None = None,
    organization: str | None = None,
    notes: str | None = None,
    actor: Agent | None = None,
) -> Customer:
    """A customer an agent (or an integration) records before they write in; the address must
    be nobody's yet (``Conflict`` with code ``identity_taken``). ``organization`` is a name."""
    value = normalize_email(email)
    if find_by_identity(session, IdentityKind.EMAIL, value) is not None:
        raise Conflict(_("This identity belongs to another customer."), code="identity_taken")
    customer = new_customer(IdentityKind.EMAIL, value, name, language or None)
    if notes:
        customer.notes = notes[:20_000]
    org = _organization(session, organization, actor) if organization else None
    if org is None:
        organizations.assign_by_domain(session, [customer])
    try:
        with session.begin_nested():
            session.add(customer)
            if org is not None:
                customer.organization = org
            session.flush()
    except IntegrityError:
        # Stored by another transaction after we looked.
        raise Conflict(
            _("This identity belongs to another customer."), code="identity_taken"
        ) from None
    record_created(session, customer)
    return customer


def _organization(session: Session, name: str, actor: Agent | None) -> Organization | None:
    """The organization of this name, created (with its event) if new; None for a blank name."""
    org_name = organizations.clean_name(name)
    if not org_name:
        return None
    org = organizations.find_by_name(session, org_name)  # in any case
    if org is None:
        org = Organization(name=org_name)
        session.add(org)
        session.flush()
        organizations.record_created_by_name(session, org, actor)
    return org


def update_customer(
    session: Session,
    customer: Customer,
    *,
    name: str | None = None,
    notes: str | None = None,
    organization: str | None = None,
    language: str | None = None,
    actor: Agent | None = None,
) -> None:
    """Change what agents know about a customer; ``organization`` is a name (created if new,
    empty to remove)."""
    before = _profile(customer)
    if name is not None:
        customer.name = clip_name(name)
    if notes is not None:
        customer.notes = notes[:20_000]
    if language is not None:
        customer.language = language or None
    if organization is not None:
        customer.organization = _organization(session, organization, actor)
    session.flush()
    after = _profile(customer)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changes:
        stream.record(session, "customer.updated", "customer", customer.id, actor, changes=changes)


def _profile(customer: Customer) -> dict[str, Any]:
    return {
        "name": customer.name,
        "email": customer.email,
        "notes": customer.notes,
        "language": customer.language,
        "organization_id": customer.organization_id,
    }


def merge_customers(
    session: Session, source: Customer, target: Customer, actor: Agent | None = None
) -> None:
    """Two records are one person: everything of ``source`` moves to ``target``, then the
    source record is deleted. Identities, tickets, participations, authored messages and any
    other row pointing at the source (found through the schema's foreign keys, so tables added
    later are covered too) follow."""
    from sqlalchemy import delete, update

    from helpdesk.db import Base
    from helpdesk.models import ticket_participants

    if source.id == target.id:
        raise ServiceError(_("A customer cannot be merged into themselves."))
    # Participations: drop the ones the target already has (primary key), then move the rest.
    target_tickets = select(ticket_participants.c.ticket_id).where(
        ticket_participants.c.customer_id == target.id
    )
    session.execute(
        delete(ticket_participants).where(
            ticket_participants.c.customer_id == source.id,
            ticket_participants.c.ticket_id.in_(target_tickets),
        )
    )
    customers = Base.metadata.tables["customers"]
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is customers and fk.column.name == "id":
                session.execute(
                    update(table).where(fk.parent == source.id).values({fk.parent.name: target.id})
                )
    # A participant row of the target on its own ticket is meaningless; drop it.
    from helpdesk.models import Ticket

    own = select(Ticket.id).where(Ticket.customer_id == target.id)
    session.execute(
        delete(ticket_participants).where(
            ticket_participants.c.customer_id == target.id, ticket_participants.c.ticket_id.in_(own)
        )
    )
    before = _profile(target)
    target.name = target.name or source.name
    target.email = target.email or source.email
    target.language = target.language or source.language
    target.organization_id = target.organization_id or source.organization_id
    if source.notes.strip():
        target.notes = (target.notes + "\n\n" + source.notes).strip()
    session.expire(source)
    session.expire(target, ["identities", "tickets"])
    stream.record(
        session, "customer.merged", "customer", source.id, actor, into_customer_id=target.id
    )
    after = _profile(target)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changes:
        stream.record(session, "customer.updated", "customer", target.id, actor, changes=changes)
    session.delete(session.get(Customer, source.id))
    session.flush()
