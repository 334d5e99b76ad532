"""Agents and teams: creating and changing the people who answer."""

from __future__ import annotations

from collections.abc import Iterable

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


def find_team(session: Session, ident: str | int) -> Team:
    """A team by id or name (the command line accepts either)."""
    text = str(ident).strip()
    team = session.get(Team, int(text)) if text.isdigit() else None
    if team is None:
        team = session.scalar(select(Team).where(Team.name == text))
    if team is None:
        raise ServiceError(_("No team named %(team)s.", team=text))
    return team


def save_team(
    session: Session,
    actor: Agent | None,
    *,
    name: str,
    member_ids: Iterable[int],
    mode: str,
    max_open: int | None,
    team: Team | None = None,
) -> Team:
    """Create a team or change its name, members and automatic assignment (audited)."""
    from helpdesk.services import audit
    from helpdesk.services.assignment import set_assignment

    name = " ".join(name.split())
    if not name:
        raise ServiceError(_("A team needs a name."))
    clash = session.scalar(select(Team.id).where(Team.name == name))
    if clash is not None and (team is None or clash != team.id):
        raise ServiceError(_("A team named %(name)s already exists.", name=name))
    wanted = set(member_ids)
    members = list(session.scalars(select(Agent).where(Agent.id.in_(wanted)).order_by(Agent.id)))
    if len(members) != len(wanted):
        raise ServiceError(_("Unknown agent."))
    if team is None:
        team = create_team(session, name, members)
        before: set[str] = set()
    else:
        before = {m.name for m in team.members}
        team.name = name
        team.members = members
        session.flush()
    after = {m.name for m in members}
    if before != after:
        audit.record(
            session,
            None,
            actor,
            "team.members",
            team_id=team.id,
            team=team.name,
            added=sorted(after - before),
            removed=sorted(before - after),
        )
    set_assignment(session, team, mode, max_open, actor)
    return team
