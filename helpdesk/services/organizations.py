"""Organizations: the companies customers belong to, with the email domains that link new
customers to them (``resolve_customer`` on every channel, the mail batch path, and
:func:`link_domain_customers` for the customers already known).

Events: ``organization.created`` (``name, domains``), ``organization.updated`` (``changes:
{field: {from, to}}`` for ``name, notes, domains``), ``organization.merged`` (the source, now
deleted: ``into_organization_id, customers``), and ``customer.updated`` with
``changes.organization_id`` for each customer a domain link or a merge moved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    Customer,
    CustomerIdentity,
    IdentityKind,
    Organization,
    OrganizationDomain,
)
from helpdesk.services import audit, stream
from helpdesk.services.errors import Conflict, ServiceError

MAX_NAME_LENGTH = 200  # organizations.name
MAX_NOTES_LENGTH = 20_000
MAX_DOMAINS = 100
# Letters, digits and hyphens per label (IDNA's ASCII form), at least two labels, a
# top-level label that is not all digits.
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


class InvalidDomain(ServiceError):
    code = "invalid_domain"


def clean_name(name: str | None) -> str:
    return " ".join((name or "").split())[:MAX_NAME_LENGTH]


def normalize_domain(raw: str) -> str:
    """A domain as stored: lower-case ASCII (an internationalised name in its IDNA form),
    without a leading ``@`` or a trailing dot; ``InvalidDomain`` when it is none."""
    value = (raw or "").strip().lower().lstrip("@").rstrip(".")
    if value and not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            value = ""
    if not _DOMAIN.match(value):
        raise InvalidDomain(_("Not a domain: %(domain)s", domain=(raw or "").strip() or "—"))
    return value


def parse_domains(values: str | Iterable[str]) -> list[str]:
    """Domains from a form's text (one a line, or separated by commas or spaces) or a list:
    normalised, each once, sorted."""
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    found = sorted({normalize_domain(v) for v in values if v and v.strip()})
    if len(found) > MAX_DOMAINS:
        raise InvalidDomain(_("At most %(count)s domains.", count=MAX_DOMAINS))
    return found


def email_domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].lower() or None


# --- reading -------------------------------------------------------------------------------------


def by_domains(session: Session, domains: Iterable[str]) -> dict[str, int]:
    """The organization id of each of ``domains`` that belongs to one (one statement)."""
    wanted = sorted({d for d in domains if d})
    if not wanted:
        return {}
    return {
        str(domain): int(org_id)
        for domain, org_id in session.execute(
            select(OrganizationDomain.domain, OrganizationDomain.organization_id).where(
                OrganizationDomain.domain.in_(wanted)
            )
        )
    }


def assign_by_domain(session: Session, customers: Sequence[Customer]) -> None:
    """Put new customers (not yet flushed, or without an organization) into the organization
    of their email address's domain: one statement for all of them. For paths that create
    customers in bulk (the mail batch, an import) before they flush; ``customer.created``
    then carries the ``organization_id``."""
    pending = [c for c in customers if c.organization_id is None and c.organization is None]
    domains = {email_domain(c.email) for c in pending}
    found = by_domains(session, {d for d in domains if d})
    if not found:
        return
    for c in pending:
        org_id = found.get(email_domain(c.email) or "")
        if org_id is not None:
            c.organization_id = org_id


def find_by_name(session: Session, name: str) -> Organization | None:
    """The organization of this name, in any case."""
    cleaned = clean_name(name)
    if not cleaned:
        return None
    exact = session.scalar(select(Organization).where(Organization.name == cleaned))
    if exact is not None:
        return exact
    return session.scalar(
        select(Organization)
        .where(func.lower(Organization.name) == cleaned.lower())
        .order_by(Organization.id)
        .limit(1)
    )


# --- writing -------------------------------------------------------------------------------------


def _check_name(session: Session, name: str, own_id: int | None = None) -> str:
    cleaned = clean_name(name)
    if not cleaned:
        raise ServiceError(_("An organization needs a name."), code="name_required")
    other = find_by_name(session, cleaned)
    if other is not None and other.id != own_id:
        raise Conflict(
            _("Another organization is already called %(name)s.", name=other.name),
            code="name_taken",
        )
    return cleaned


def _check_domains(session: Session, domains: list[str], own_id: int | None = None) -> None:
    for domain, org_id in by_domains(session, domains).items():
        if org_id != own_id:
            owner = session.get(Organization, org_id)
            raise Conflict(
                _(
                    "The domain %(domain)s belongs to another organization: %(name)s.",
                    domain=domain,
                    name=owner.name if owner else f"#{org_id}",
                ),
                code="domain_taken",
            )


def create_organization(
    session: Session,
    name: str,
    *,
    domains: str | Iterable[str] = (),
    notes: str = "",
    actor: Agent | None = None,
) -> Organization:
    """A new organization; ``Conflict`` ``name_taken`` / ``domain_taken`` when the name (in
    any case) or a domain is another's, ``InvalidDomain`` for a domain that is none."""
    cleaned = _check_name(session, name)
    wanted = parse_domains(domains)
    _check_domains(session, wanted)
    org = Organization(name=cleaned, notes=(notes or "")[:MAX_NOTES_LENGTH])
    org.domains = [OrganizationDomain(domain=d) for d in wanted]
    try:
        with session.begin_nested():
            session.add(org)
            session.flush()
    except IntegrityError:
        _taken_meanwhile(session, cleaned, wanted, None)
    stream.record(
        session,
        "organization.created",
        "organization",
        org.id,
        actor,
        name=org.name,
        domains=wanted,
    )
    return org


def record_created_by_name(session: Session, org: Organization, actor: Agent | None) -> None:
    """``organization.created`` for one a customer's form made by naming it."""
    stream.record(
        session, "organization.created", "organization", org.id, actor, name=org.name, domains=[]
    )


def _state(org: Organization) -> dict[str, Any]:
    return {"name": org.name, "notes": org.notes or "", "domains": org.domain_names}


def _record_changes(
    session: Session, org: Organization, before: dict[str, Any], actor: Agent | None
) -> dict[str, Any]:
    after = _state(org)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changes:
        stream.record(
            session, "organization.updated", "organization", org.id, actor, changes=changes
        )
    return changes


def update_organization(
    session: Session,
    org: Organization,
    *,
    name: str | None = None,
    notes: str | None = None,
    domains: str | Iterable[str] | None = None,
    actor: Agent | None = None,
) -> dict[str, Any]:
    """Change the name, notes or domains (only those given); returns the changes recorded in
    ``organization.updated``. Customers already linked stay where they are when a domain goes."""
    before = _state(org)
    if name is not None:
        org.name = _check_name(session, name, org.id)
    if notes is not None:
        org.notes = notes[:MAX_NOTES_LENGTH]
    if domains is not None:
        wanted = parse_domains(domains)
        _check_domains(session, wanted, org.id)
        keep = [d for d in org.domains if d.domain in wanted]
        have = {d.domain for d in keep}
        # Removed ones first: a domain dropped and re-added in one edit is one row.
        org.domains = keep
        session.flush()
        org.domains = keep + [OrganizationDomain(domain=d) for d in wanted if d not in have]
        org.domains.sort(key=lambda d: d.domain)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        _taken_meanwhile(session, org.name, org.domain_names, org.id)
    return _record_changes(session, org, before, actor)


def _taken_meanwhile(session: Session, name: str, domains: list[str], own_id: int | None) -> None:
    """Another transaction stored the name or a domain after we looked (the unique index made
    us wait for it): the same refusal as if it had been there first."""
    _check_name(session, name, own_id)
    _check_domains(session, domains, own_id)
    raise Conflict(
        _("Another organization was saved with this name or domain. Please try again."),
        code="conflict",
    )


def _customers_with_domains(domains: Sequence[str]) -> Any:
    """Customers without an organization who have an email address at one of ``domains``."""
    # Normalised domains hold only letters, digits, dots and hyphens: nothing to escape.
    at_domain = exists().where(
        CustomerIdentity.customer_id == Customer.id,
        CustomerIdentity.kind == IdentityKind.EMAIL,
        or_(*(CustomerIdentity.value.like(f"%@{d}") for d in domains)),
    )
    return select(Customer.id).where(and_(Customer.organization_id.is_(None), at_domain))


def link_domain_customers(session: Session, org: Organization, actor: Agent | None = None) -> int:
    """Put every customer without an organization whose email address is at one of the
    organization's domains into it (customers of another organization stay there); one
    ``customer.updated`` each. Returns how many were linked."""
    domains = org.domain_names
    if not domains:
        return 0
    ids = list(session.scalars(_customers_with_domains(domains).order_by(Customer.id)))
    _move_customers(session, ids, None, org.id, actor)
    return len(ids)


def _move_customers(
    session: Session, ids: list[int], old: int | None, new: int, actor: Agent | None
) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        session.execute(
            update(Customer)
            .where(Customer.id.in_(chunk))
            .values(organization_id=new)
            .execution_options(synchronize_session="fetch")
        )
    for customer_id in ids:
        stream.record(
            session,
            "customer.updated",
            "customer",
            customer_id,
            actor,
            changes={"organization_id": {"from": old, "to": new}},
        )


def _repoint_views(session: Session, old: int, new: int) -> None:
    """Saved views and remembered queues filtered by the merged organization show the one it
    became (their arguments are JSON, not a foreign key; the tables are small)."""
    from helpdesk.models.views import AgentPreference, SavedView

    for view in session.scalars(select(SavedView)):
        if (view.args or {}).get("organization") == str(old):
            view.args = {**view.args, "organization": str(new)}
    for pref in session.scalars(select(AgentPreference)):
        if (pref.last_queue_args or {}).get("organization") == str(old):
            pref.last_queue_args = {**pref.last_queue_args, "organization": str(new)}


def merge_organizations(
    session: Session, source: Organization, target: Organization, actor: Agent | None = None
) -> int:
    """``source`` and ``target`` are one organization: its customers and domains (and any other
    row pointing at it, found through the schema's foreign keys) move to ``target``, its notes
    are appended to the target's, then it is deleted. Returns how many customers moved."""
    from helpdesk.db import Base

    if source.id == target.id:
        raise ServiceError(
            _("An organization cannot be merged into itself."), code="same_organization"
        )
    before = _state(target)
    moved = list(
        session.scalars(
            select(Customer.id).where(Customer.organization_id == source.id).order_by(Customer.id)
        )
    )
    _move_customers(session, moved, source.id, target.id, actor)
    organizations = Base.metadata.tables["organizations"]
    customers = Base.metadata.tables["customers"]
    for table in Base.metadata.sorted_tables:
        if table is customers:
            continue
        for fk in table.foreign_keys:
            if fk.column.table is organizations and fk.column.name == "id":
                session.execute(
                    update(table).where(fk.parent == source.id).values({fk.parent.name: target.id})
                )
    _repoint_views(session, source.id, target.id)
    if source.notes.strip():
        target.notes = (
            (target.notes or "").rstrip() + "\n\n" + source.name + ":\n" + source.notes.strip()
        ).strip()[:MAX_NOTES_LENGTH]
    source_id, source_name = source.id, source.name
    session.flush()
    # Its rows moved by statements: the ORM's copies must not cascade or point back.
    session.expunge(source)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer) and obj.organization_id == target.id:
            session.expire(obj, ["organization"])
        elif isinstance(obj, OrganizationDomain):
            session.expire(obj)
    session.expire(target, ["domains", "customers"])
    session.execute(delete(Organization).where(Organization.id == source_id))
    stream.record(
        session,
        "organization.merged",
        "organization",
        source_id,
        actor,
        into_organization_id=target.id,
        customers=len(moved),
    )
    audit.record(
        session,
        None,
        actor,
        "organization.merged",
        organization_id=target.id,
        merged_id=source_id,
        merged_name=source_name,
        customers=len(moved),
    )
    _record_changes(session, target, before, actor)
    session.flush()
    return len(moved)
