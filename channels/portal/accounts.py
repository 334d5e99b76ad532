"""Optional password accounts for portal customers (argon2id, via helpdesk.auth)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from channels.portal.models import PortalAccount
from helpdesk.auth import MIN_PASSWORD_LENGTH, hash_password, verify_password
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Customer, IdentityKind
from helpdesk.services.customers import find_by_identity
from helpdesk.services.errors import ServiceError


def set_password(session: Session, customer: Customer, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(_("A password needs at least %(n)d characters.", n=MIN_PASSWORD_LENGTH))
    account = session.get(PortalAccount, customer.id)
    if account is None:
        session.add(PortalAccount(customer_id=customer.id, password_hash=hash_password(password)))
    else:
        account.password_hash = hash_password(password)
        account.updated_at = utcnow()


def has_password(session: Session, customer: Customer) -> bool:
    return session.get(PortalAccount, customer.id) is not None


def authenticate(session: Session, email: str, password: str) -> Customer | None:
    """The customer for this email and password; the same work whether or not they exist."""
    try:
        customer = find_by_identity(session, IdentityKind.EMAIL, email)
    except ServiceError:
        customer = None
    account = session.get(PortalAccount, customer.id) if customer is not None else None
    ok = verify_password(account.password_hash if account else None, password)
    return customer if ok and account is not None else None
