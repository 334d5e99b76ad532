"""Agents and teams: creating and changing the people who answer: invitations (a mail with a
set-password link), roles and the KB-editor permission, deactivation, and each agent's profile
(name, language, time zone, password)."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.auth import MIN_PASSWORD_LENGTH, hash_password, verify_password
from helpdesk.i18n import _, is_timezone
from helpdesk.models import Agent, AgentRole, Calendar, Team
from helpdesk.services import stream
from helpdesk.services.customers import normalize_email
from helpdesk.services.errors import Forbidden, NotFound, ServiceError


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


class Keep(enum.Enum):
    """A parameter left as the record has it (``None`` means "none" there)."""

    KEEP = "keep"


def save_team(
    session: Session,
    actor: Agent | None,
    *,
    name: str,
    member_ids: Iterable[int],
    mode: str,
    max_open: int | None,
    team: Team | None = None,
    calendar_id: int | Keep | None = Keep.KEEP,
) -> Team:
    """Create a team or change its name, members, automatic assignment (audited) and business
    hours (``calendar_id``: None is the installation's default calendar; left out, the team's
    stays). Admins only (``actor`` ``None`` is the command line)."""
    from helpdesk.services import audit
    from helpdesk.services.assignment import set_assignment

    _require_admin(actor)
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
    if isinstance(calendar_id, int) and session.get(Calendar, calendar_id) is None:
        raise ServiceError(_("Calendar not found."), code="unknown_calendar")
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
    if calendar_id is not Keep.KEEP:
        team.calendar_id = calendar_id
    set_assignment(session, team, mode, max_open, actor)
    return team


# --- managing agents (the admin's Agents page) ---------------------------------------------------
# Only admins manage agents; an admin can neither demote nor deactivate themselves, and the last
# active admin stays an active admin (someone must be able to manage the helpdesk).

INVITE_PURPOSE = "agent.invite"
DEFAULT_INVITE_HOURS = 72


def _require_admin(actor: Agent | None) -> None:
    if actor is not None and not actor.is_admin:
        raise Forbidden(_("Only admins can manage agents."))


def _active_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count(Agent.id)).where(
                Agent.role == AgentRole.ADMIN, Agent.active.is_(True)
            )
        )
        or 0
    )


def _check_keeps_an_admin(session: Session, actor: Agent | None, agent: Agent) -> None:
    """Before ``agent`` stops being an active admin."""
    if actor is not None and actor.id == agent.id:
        raise ServiceError(_("You cannot demote or deactivate yourself."))
    if agent.is_admin and agent.active and _active_admins(session) <= 1:
        raise ServiceError(_("The helpdesk needs at least one active admin."))


def invite_agent(
    session: Session,
    actor: Agent | None,
    *,
    email: str,
    name: str,
    role: AgentRole | str = AgentRole.AGENT,
    kb_editor: bool = False,
    team_ids: Iterable[int] = (),
    language: str | None = None,
) -> Agent:
    """A new agent with no password yet, and the invitation mail (queued in this transaction)
    with a link to set one (:func:`invite_token`; valid ``AGENT_INVITE_HOURS``)."""
    _require_admin(actor)
    if not normalize_email(email) or "@" not in email:
        raise ServiceError(_("Enter a valid email address."))
    agent = create_agent(session, email, name, None, role, language)
    agent.kb_editor = bool(kb_editor)
    wanted = set(team_ids)
    if wanted:
        teams = list(session.scalars(select(Team).where(Team.id.in_(wanted))))
        if len(teams) != len(wanted):
            raise ServiceError(_("Unknown team."))
        agent.teams = teams
    session.flush()
    stream.record(
        session, "agent.invited", "agent", agent.id, actor, role=agent.role.value,
        kb_editor=agent.kb_editor,
    )  # fmt: skip
    send_invitation(session, actor, agent)
    return agent


def send_invitation(session: Session, actor: Agent | None, agent: Agent) -> None:
    """(Re)send the set-password mail to an agent who has not set a password yet."""
    from helpdesk.services.outbox import queue_mail

    _require_admin(actor)
    if agent.password_hash:
        raise ServiceError(_("%(name)s has already set a password.", name=agent.name))
    queue_mail(
        session,
        INVITE_PURPOSE,
        agent.email,
        language=agent.language,
        payload={"agent_id": agent.id, "invited_by": actor.name if actor else None},
    )


def _invite_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=INVITE_PURPOSE)


def _fingerprint(agent: Agent) -> str:
    """Changes when the password is set: a used link is dead."""
    raw = f"{agent.password_hash or ''}:{agent.session_version or 0}:{agent.email}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def invite_hours() -> int:
    return int(current_app.config.get("AGENT_INVITE_HOURS") or DEFAULT_INVITE_HOURS)


def invite_token(agent: Agent) -> str:
    return _invite_serializer().dumps([agent.id, _fingerprint(agent)])


def agent_for_invite(session: Session, token: str) -> Agent:
    """The agent a set-password link is for; ServiceError when it expired, was used, or the
    agent was deactivated."""
    try:
        agent_id, fingerprint = _invite_serializer().loads(token, max_age=invite_hours() * 3600)
    except SignatureExpired:
        raise ServiceError(
            _("This link has expired. Ask an admin to send a new invitation."), code="expired"
        ) from None
    except (BadSignature, ValueError, TypeError):
        raise NotFound(_("This link is not valid.")) from None
    agent = session.get(Agent, agent_id) if isinstance(agent_id, int) else None
    if agent is None or not agent.active or fingerprint != _fingerprint(agent):
        raise NotFound(_("This link is not valid."))
    return agent


def accept_invitation(session: Session, token: str, password: str) -> Agent:
    """Set the password of the agent the link names (the link then stops working)."""
    agent = agent_for_invite(session, token)
    _set_password(agent, password)
    stream.record(session, "agent.activated", "agent", agent.id, agent)
    return agent


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(
            _("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
        )
    if len(set(password)) < 4:
        raise ServiceError(_("Choose a password that is harder to guess."))


def _set_password(agent: Agent, password: str) -> None:
    _check_password(password)
    agent.password_hash = hash_password(password)
    agent.session_version = (agent.session_version or 0) + 1  # other sessions end


def set_agent_active(session: Session, actor: Agent | None, agent: Agent, active: bool) -> None:
    """Deactivate (no sign-in, signed out everywhere, no automatic assignment) or
    reactivate."""
    _require_admin(actor)
    if agent.active == active:
        return
    if not active:
        _check_keeps_an_admin(session, actor, agent)
        agent.session_version = (agent.session_version or 0) + 1
    agent.active = active
    stream.record(session, "agent.updated", "agent", agent.id, actor, fields=["active"])


def change_role(
    session: Session,
    actor: Agent | None,
    agent: Agent,
    role: AgentRole | str,
    kb_editor: bool,
) -> None:
    _require_admin(actor)
    try:
        new_role = AgentRole(role)
    except ValueError:
        raise ServiceError(_("Unknown role: %(role)s", role=role)) from None
    fields = []
    if new_role != agent.role:
        if new_role != AgentRole.ADMIN:
            _check_keeps_an_admin(session, actor, agent)
        agent.role = new_role
        fields.append("role")
    if bool(kb_editor) != agent.kb_editor:
        agent.kb_editor = bool(kb_editor)
        fields.append("kb_editor")
    if fields:
        stream.record(session, "agent.updated", "agent", agent.id, actor, fields=fields)


# --- the agent's own profile --------------------------------------------------------------------


def update_profile(
    session: Session, agent: Agent, *, name: str, language: str | None, timezone: str | None
) -> None:
    name = " ".join(name.split())
    if not name:
        raise ServiceError(_("Enter your name."))
    if language not in (None, "", *current_app.config["LANGUAGES"]):
        raise ServiceError(_("Unknown language."))
    if timezone and not is_timezone(timezone):
        raise ServiceError(_("Unknown time zone: %(zone)s", zone=timezone))
    agent.name = name[:200]
    agent.language = language or None
    agent.timezone = timezone or None
    stream.record(
        session, "agent.updated", "agent", agent.id, agent, fields=["name", "language", "timezone"]
    )


def change_password(session: Session, agent: Agent, current: str, new: str) -> None:
    """The agent's own password: the current one first. Other sessions are signed out."""
    if not verify_password(agent.password_hash, current):
        raise ServiceError(_("Your current password is not correct."))
    _set_password(agent, new)
    stream.record(session, "agent.updated", "agent", agent.id, agent, fields=["password"])
