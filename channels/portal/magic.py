"""Magic links: signed, expiring, single-purpose, single-use.

A link is ``/portal/m/<token>`` where the token is ``itsdangerous.URLSafeTimedSerializer``
output over ``{"n": nonce}`` with the purpose in the salt, so a sign-in token cannot be used as
a ticket token and vice versa. The nonce's row (``PortalToken``) says who and which ticket and
makes the link single-use; expiry is checked by both the signature's age and the row.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from channels.portal.models import PortalToken
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.links import base_url
from helpdesk.models import Customer, Ticket
from helpdesk.models.outbound import OutboundMail
from helpdesk.services import outbox
from helpdesk.services.errors import ServiceError

PURPOSES = ("ticket", "signin")
log = logging.getLogger(__name__)


class LinkError(ServiceError):
    """A link that is forged, expired, used or for another purpose (user-facing message)."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt=f"helpdesk.portal.magic-link.{purpose}"
    )


def max_age(purpose: str) -> int:
    key = "PORTAL_TICKET_LINK_MAX_AGE" if purpose == "ticket" else "PORTAL_SIGNIN_LINK_MAX_AGE"
    default = 14 * 24 * 3600 if purpose == "ticket" else 3600
    return int(current_app.config.get(key, default))


def issue(
    session: Session,
    customer: Customer,
    purpose: str,
    *,
    ticket: Ticket | None = None,
    mail: str | None = None,
    language: str | None = None,
) -> tuple[PortalToken, str]:
    """A new link (row + token). With ``mail`` (``"confirmation"`` or ``"signin"``), the core
    outbox mails it after commit (``portal.<mail>``, composed by ``channels.portal.mail``)."""
    assert purpose in PURPOSES
    now = utcnow()
    row = PortalToken(
        nonce=secrets.token_urlsafe(24),
        customer_id=customer.id,
        ticket_id=ticket.id if ticket else None,
        purpose=purpose,
        created_at=now,
        expires_at=now + timedelta(seconds=max_age(purpose)),
        language=language,
    )
    session.add(row)
    session.flush()
    if mail and customer.email and not _mail_cap_reached(session, customer, now):
        outbox.queue_mail(
            session,
            f"portal.{mail}",
            customer.email,
            customer_id=customer.id,
            ticket_id=ticket.id if ticket else None,
            language=language,
            payload={"nonce": row.nonce},
        )
    return row, token_for(row)


def _mail_cap_reached(session: Session, customer: Customer, now: datetime) -> bool:
    """Whether this customer's inbox had its hour's share of link mails already.

    Requests are limited per requester (see the portal's views); this caps what many requesters
    together can send to one inbox. Over the cap the request still gets its ordinary answer and
    no new mail: the links already sent work, so nobody is locked out of their sign-in."""
    cap = int(current_app.config.get("PORTAL_LINK_MAILS_PER_HOUR", 5))
    sent = session.scalar(
        select(func.count())
        .select_from(OutboundMail)
        .where(
            OutboundMail.customer_id == customer.id,
            OutboundMail.purpose.in_(["portal.confirmation", "portal.signin"]),
            OutboundMail.created_at > now - timedelta(hours=1),
        )
    )
    if int(sent or 0) < cap:
        return False
    log.info("portal: no link mail to customer %s, %d sent in the last hour", customer.id, cap)
    return True


def token_for(row: PortalToken) -> str:
    return str(_serializer(row.purpose).dumps({"n": row.nonce}))


def link_for(row: PortalToken) -> str:
    base = base_url()
    return f"{base}/portal/m/{token_for(row)}"


def peek(session: Session, token: str) -> PortalToken:
    """The valid, unused row a token names; raises LinkError otherwise. Writes nothing."""
    for purpose in PURPOSES:
        try:
            data = _serializer(purpose).loads(token, max_age=max_age(purpose))
        except SignatureExpired:
            raise LinkError(_("This link has expired. Ask for a new one below.")) from None
        except BadSignature:
            continue
        nonce = data.get("n") if isinstance(data, dict) else None
        row = session.get(PortalToken, nonce) if isinstance(nonce, str) else None
        if row is None or row.purpose != purpose:
            break
        if row.used_at is not None:
            raise LinkError(_("This link was already used. Ask for a new one below."))
        if row.expires_at <= utcnow():
            raise LinkError(_("This link has expired. Ask for a new one below."))
        return row
    raise LinkError(_("This link is not valid. Ask for a new one below."))


def consume(session: Session, token: str) -> PortalToken:
    """Check and use up a link (the caller commits)."""
    row = peek(session, token)
    # Conditional update: of two clicks racing on one link, exactly one wins.
    won = session.execute(  # type: ignore[attr-defined]
        update(PortalToken)
        .where(PortalToken.nonce == row.nonce, PortalToken.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if not won:
        raise LinkError(_("This link was already used. Ask for a new one below."))
    session.refresh(row)
    return row
