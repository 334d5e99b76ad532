"""Macros: create, find, render and apply canned replies with ticket actions.

Placeholders use a sandboxed Jinja environment over plain dictionaries (``customer.name``,
``customer.email``, ``ticket.number``, ``ticket.subject``, ``agent.name``), so a macro can
never reach Python objects, the database or the app; a macro that does not render is refused
when it is saved, not when an agent is in front of a customer.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Agent, Macro, Priority, Team, Ticket, TicketStatus
from helpdesk.services import tags, tickets
from helpdesk.services.errors import NotFound, ServiceError

_env = SandboxedEnvironment(undefined=Undefined, autoescape=False, keep_trailing_newline=True)

ACTION_KEYS = {"status", "priority", "add_tags", "assignee", "team_id"}


def _context(ticket: Ticket | None, agent: Agent | None) -> dict[str, Any]:
    customer = ticket.customer if ticket is not None else None
    return {
        "customer": {
            "name": (customer.name or customer.display_name) if customer else "",
            "email": (customer.email or "") if customer else "",
        },
        "ticket": {
            "number": ticket.display_number if ticket else "",
            "subject": ticket.subject if ticket else "",
        },
        "agent": {"name": agent.name if agent else "", "email": agent.email if agent else ""},
    }


def _render(text: str, context: dict[str, Any]) -> str:
    return _env.from_string(text).render(context)


def _check_template(text: str) -> None:
    try:
        _render(text, _context(None, None))
    except TemplateError as exc:
        raise ServiceError(_("The macro text has an error: %(error)s", error=str(exc))) from None


def _clean_actions(session: Session, actions: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in actions.items():
        if key not in ACTION_KEYS or value in (None, "", []):
            continue
        if key == "status":
            try:
                out[key] = TicketStatus(value).value
            except ValueError:
                raise ServiceError(_("Unknown status.")) from None
        elif key == "priority":
            try:
                out[key] = int(Priority(int(value)))
            except (TypeError, ValueError):
                raise ServiceError(_("Unknown priority.")) from None
        elif key == "add_tags":
            names = value if isinstance(value, list) else str(value).split(",")
            out[key] = sorted({tags.normalize_tag(n) for n in names if str(n).strip()})
        elif key == "assignee":
            if value == "me":
                out[key] = "me"
            elif session.get(Agent, int(value)) is None:
                raise ServiceError(_("Unknown agent."))
            else:
                out[key] = int(value)
        elif key == "team_id":
            if session.get(Team, int(value)) is None:
                raise ServiceError(_("Unknown team."))
            out[key] = int(value)
    return out


def save_macro(
    session: Session,
    agent: Agent,
    *,
    name: str,
    body_en: str,
    body_bn: str = "",
    actions: dict[str, Any] | None = None,
    shared: bool = False,
    macro: Macro | None = None,
) -> Macro:
    """Create (or update ``macro``). Shared macros may be changed by admins and their author."""
    name = " ".join(name.split())
    if not name:
        raise ServiceError(_("A macro needs a name."))
    if not (body_en.strip() or body_bn.strip() or actions):
        raise ServiceError(_("A macro needs a text or an action."))
    for body in (body_en, body_bn):
        _check_template(body)
    if macro is not None and not can_edit(agent, macro):
        raise NotFound(_("Macro not found."))
    if macro is None:
        macro = Macro(owner_id=agent.id)
        session.add(macro)
    macro.name = name[:200]
    macro.body_en = body_en
    macro.body_bn = body_bn
    macro.actions = _clean_actions(session, actions or {})
    macro.shared = shared
    macro.updated_at = utcnow()
    session.flush()
    return macro


def can_edit(agent: Agent, macro: Macro) -> bool:
    return macro.owner_id == agent.id or (macro.shared and agent.is_admin)


def delete_macro(session: Session, agent: Agent, macro: Macro) -> None:
    if not can_edit(agent, macro):
        raise NotFound(_("Macro not found."))
    session.delete(macro)


def get_macro(session: Session, agent: Agent, macro_id: int) -> Macro:
    macro = session.get(Macro, macro_id)
    if macro is None or not (macro.shared or macro.owner_id == agent.id):
        raise NotFound(_("Macro not found."))
    return macro


def visible_macros(session: Session, agent: Agent, query: str = "", limit: int = 50) -> list[Macro]:
    """The agent's own and the shared macros, most used first, optionally matching ``query``."""
    q = select(Macro).where(or_(Macro.shared.is_(True), Macro.owner_id == agent.id))
    for word in query.split()[:5]:
        pattern = f"%{word.lower()}%"
        q = q.where(
            or_(
                func.lower(Macro.name).like(pattern),
                func.lower(Macro.body_en).like(pattern),
                Macro.body_bn.like(f"%{word}%"),
            )
        )
    q = q.order_by(Macro.usage_count.desc(), Macro.name).limit(limit)
    return list(session.scalars(q))


def macro_body(macro: Macro, lang: str | None) -> str:
    """The macro's text in ``lang`` when it has one, else in the other language."""
    body = macro.body_bn if lang == "bn" and macro.body_bn.strip() else macro.body_en
    return body if body.strip() else macro.body_bn


def render_macro(macro: Macro, ticket: Ticket, agent: Agent) -> str:
    """The macro's text for this ticket, in the customer's language when it has one."""
    body = macro_body(macro, ticket.customer.language or ticket.language or "en")
    try:
        return _render(body, _context(ticket, agent))
    except TemplateError as exc:
        raise ServiceError(_("The macro text has an error: %(error)s", error=str(exc))) from None


def apply_macro(session: Session, macro: Macro, ticket: Ticket, agent: Agent) -> str:
    """Run the macro's actions on the ticket (each audited) and return its text for the reply."""
    actions = macro.actions or {}
    if "assignee" in actions:
        assignee = agent if actions["assignee"] == "me" else session.get(Agent, actions["assignee"])
        tickets.assign_ticket(session, ticket, assignee, agent)
    if "team_id" in actions:
        tickets.set_team(session, ticket, session.get(Team, actions["team_id"]), agent)
    if "priority" in actions:
        tickets.set_priority(session, ticket, actions["priority"], agent)
    if "status" in actions:
        tickets.set_status(session, ticket, actions["status"], agent)
    if actions.get("add_tags"):
        tags.add_tags(session, ticket, actions["add_tags"], agent)
    macro.usage_count = (macro.usage_count or 0) + 1
    return render_macro(macro, ticket, agent)
