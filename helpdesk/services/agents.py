"""Agents and teams: creating and changing the people who answer."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.auth import MIN_PASSWORD_LENGTH, hash_password
from helpdesk.i18n import _
from helpdesk.models import Agent, AgentRole, Team
from helpdesk.services.customers import normalize_email
from helpdesk.services.errors import ServiceError


def create_agent(
    session: Session,
    email: str,
    name: str,
    password: str | None,
    role: AgentRole | str = AgentRole.AGENT,
    language: str | None = None,
) -> Agent:
    email = normalize_email(email)
    if session.scalar(select(Agent.id).where(func.lower(Agent.email) == email)) is not None:
        raise ServiceError(_("An agent with the email %(email)s already exists.", email=email))
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(
            _("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
        )
    try:
        role = AgentRole(role)
    except ValueError:
        raise ServiceError(_("Unknown role: %(role)s", role=role)) from None
    agent = Agent(
        email=email,
        name=name.strip() or email,
        password_hash=hash_password(password) if password else None,
        role=role,
        language=language,
    )
    session.add(agent)
    session.flush()
    return agent


def create_team(session: Session, name: str, members: list[Agent] | None = None) -> Team:
    name = name.strip()
    if not name:
        raise ServiceError(_("A team needs a name."))
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise ServiceError(_("A team named %(name)s already exists.", name=name))
    team = Team(name=name, members=list(members or []))
    session.add(team)
    session.flush()
    return team
