"""Resolving the person behind an identity: one Customer however they came in."""

from __future__ import annotations

from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import Customer, CustomerIdentity, IdentityKind
from helpdesk.services.errors import ServiceError


def normalize_email(address: str) -> str:
    """Lower-case the whole address (RFC 5321 allows case-sensitive local parts, but no
    mail provider in use treats them so, and two customers for one person is the worse bug)."""
    _name, addr = parseaddr(address.strip())
    addr = addr.strip().lower()
    if "@" not in addr or addr.startswith("@") or addr.endswith("@") or " " in addr:
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
        if name and not customer.name:
            customer.name = name
        if language and not customer.language:
            customer.language = language
        return customer
    customer = Customer(
        name=(name or "").strip(),
        email=value if kind == IdentityKind.EMAIL else None,
        language=language,
    )
    customer.identities.append(CustomerIdentity(kind=kind, value=value))
    session.add(customer)
    session.flush()
    return customer


def add_identity(
    session: Session, customer: Customer, kind: IdentityKind | str, value: str
) -> CustomerIdentity:
    kind = IdentityKind(kind)
    if kind == IdentityKind.EMAIL:
        value = normalize_email(value)
    owner = find_by_identity(session, kind, value)
    if owner is not None and owner.id != customer.id:
        raise ServiceError(_("This identity belongs to another customer."))
    for identity in customer.identities:
        if identity.kind == kind and identity.value == value:
            return identity
    identity = CustomerIdentity(kind=kind, value=value)
    customer.identities.append(identity)
    if kind == IdentityKind.EMAIL and not customer.email:
        customer.email = value
    session.flush()
    return identity
