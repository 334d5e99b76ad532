"""``/api/v1/agents`` and ``/api/v1/teams``: every token reads them (an assignee or a team is
chosen by id); inviting, changing roles, deactivating and changing teams need an ``admin`` token
of an admin (``requires_scope``; the services refuse a non-admin actor too). Through
``services.agents`` (invite, role, deactivate, ``save_team``), the verbs of the admin pages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import marshmallow as ma
from flask import current_app
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import Invalid, errors_doc, id_page, next_cursor
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import ID, TeamRef, date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent, AgentRole, AssignmentMode, Team, TokenScope
from helpdesk.services import agents as agent_verbs
from helpdesk.services.assignment import MAX_OPEN_LIMIT
from helpdesk.services.errors import NotFound

blp = Blueprint(
    "api_agents",
    __name__,
    url_prefix="/api/v1/agents",
    description="Agents: read by every token; invite, role, deactivate with an admin token.",
)
team_blp = Blueprint(
    "api_teams",
    __name__,
    url_prefix="/api/v1/teams",
    description="Teams: read by every token; create, change, members with an admin token.",
)

ROLES = [r.value for r in AgentRole]
MODES = [m.value for m in AssignmentMode]


class AgentOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    role = ma.fields.String(required=True, validate=validate.OneOf(ROLES))
    kb_editor = ma.fields.Boolean(required=True)
    active = ma.fields.Boolean(required=True)
    invited = ma.fields.Boolean(
        required=True, metadata={"description": "Invited, no password set yet"}
    )
    language = ma.fields.String(required=True, allow_none=True)
    timezone = ma.fields.String(required=True, allow_none=True)
    teams = ma.fields.List(ma.fields.Nested(TeamRef), required=True)
    created_at = date_time(required=True)
    last_login_at = date_time(required=True, allow_none=True)


class AgentPage(ma.Schema):
    agents = ma.fields.List(ma.fields.Nested(AgentOut), required=True)
    next_cursor = ma.fields.String(required=True, allow_none=True)


class AgentQuery(ma.Schema):
    active = ma.fields.Boolean(metadata={"description": "Only active (true) or deactivated"})
    team = ma.fields.Integer(validate=ID, metadata={"description": "Members of this team"})
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=100)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


class AgentInvite(ma.Schema):
    email = ma.fields.Email(required=True, validate=validate.Length(max=320))
    name = ma.fields.String(required=True, validate=validate.Length(1, 200))
    role = ma.fields.String(validate=validate.OneOf(ROLES), load_default="agent")
    kb_editor = ma.fields.Boolean(load_default=False)
    teams = ma.fields.List(ma.fields.Integer(validate=ID), load_default=list)
    language = ma.fields.String(
        validate=validate.Length(1, 8),
        allow_none=True,
        metadata={"description": "Of the invitation mail (en, bn)"},
    )


class AgentPatch(ma.Schema):
    role = ma.fields.String(validate=validate.OneOf(ROLES))
    kb_editor = ma.fields.Boolean()
    active = ma.fields.Boolean(metadata={"description": "false deactivates (signs out)"})


class Member(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    active = ma.fields.Boolean(required=True)


class TeamOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    members = ma.fields.List(ma.fields.Nested(Member), required=True)
    assignment_mode = ma.fields.String(required=True, validate=validate.OneOf(MODES))
    assignment_max_open = ma.fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: no maximum"}
    )
    calendar_id = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Its business hours (null: the default calendar)"},
    )
    created_at = date_time(required=True)


class TeamPage(ma.Schema):
    teams = ma.fields.List(ma.fields.Nested(TeamOut), required=True)
    next_cursor = ma.fields.String(required=True, allow_none=True)


class PageQuery(ma.Schema):
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=100)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


class TeamCreate(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 120))
    members = ma.fields.List(ma.fields.Integer(validate=ID), load_default=list)
    assignment_mode = ma.fields.String(validate=validate.OneOf(MODES), load_default="off")
    assignment_max_open = ma.fields.Integer(
        validate=validate.Range(1, MAX_OPEN_LIMIT), allow_none=True, load_default=None
    )
    calendar_id = ma.fields.Integer(
        validate=ID,
        allow_none=True,
        metadata={"description": "Its business hours (null: the default calendar)"},
    )


class TeamPatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 120))
    members = ma.fields.List(
        ma.fields.Integer(validate=ID), metadata={"description": "The whole set of members"}
    )
    assignment_mode = ma.fields.String(validate=validate.OneOf(MODES))
    assignment_max_open = ma.fields.Integer(
        validate=validate.Range(1, MAX_OPEN_LIMIT), allow_none=True
    )
    calendar_id = ma.fields.Integer(
        validate=ID,
        allow_none=True,
        metadata={"description": "Its business hours (null: the default calendar)"},
    )


class MemberIn(ma.Schema):
    agent = ma.fields.Integer(required=True, validate=ID, metadata={"description": "An agent's id"})


# --- JSON --------------------------------------------------------------------------------------


def agent_json(a: Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "email": a.email,
        "role": a.role.value,
        "kb_editor": bool(a.kb_editor),
        "active": bool(a.active),
        "invited": a.password_hash is None,
        "language": a.language,
        "timezone": a.timezone,
        "teams": [{"id": t.id, "name": t.name} for t in sorted(a.teams, key=lambda t: t.name)],
        "created_at": iso(a.created_at),
        "last_login_at": iso(a.last_login_at),
    }


def team_json(t: Team) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "members": [
            {"id": m.id, "name": m.name, "email": m.email, "active": bool(m.active)}
            for m in sorted(t.members, key=lambda m: m.id)
        ],
        "assignment_mode": t.assignment_mode.value,
        "assignment_max_open": t.assignment_max_open,
        "calendar_id": t.calendar_id,
        "created_at": iso(t.created_at),
    }


def _agent(agent_id: int) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(_("Agent not found."))
    return agent


def _team(team_id: int) -> Team:
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound(_("Team not found."))
    return team


def _known_agents(ids: Iterable[int], field: str) -> list[int]:
    wanted = sorted(set(ids))
    found = set(db.session.scalars(select(Agent.id).where(Agent.id.in_(wanted))))
    if len(found) != len(wanted):
        raise Invalid({field: _("Unknown agent.")})
    return wanted


# --- agents ------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(AgentQuery, location="query", as_kwargs=True)
@blp.response(200, AgentPage)
@errors_doc(blp, 400, 401, 429)
def list_agents(**args: Any) -> dict[str, Any]:
    """Agents, newest first (`active`, `team` filter)."""
    limit = int(args["limit"])
    q = select(Agent)
    if args.get("active") is not None:
        q = q.where(Agent.active.is_(bool(args["active"])))
    if args.get("team") is not None:
        q = q.where(Agent.teams.any(Team.id == args["team"]))
    q = id_page(q, Agent.id, "agents", args.get("cursor"), limit).options(selectinload(Agent.teams))
    rows = list(db.session.scalars(q))
    return {
        "agents": [agent_json(a) for a in rows[:limit]],
        "next_cursor": next_cursor(rows, "agents", limit),
    }


@blp.route("/<int:agent_id>", methods=["GET"])
@blp.response(200, AgentOut)
@errors_doc(blp, 401, 404, 429)
def get_agent(agent_id: int) -> dict[str, Any]:
    """One agent with their teams."""
    return agent_json(_agent(agent_id))


@blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(AgentInvite)
@blp.response(201, AgentOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 422, 429)
@idempotent
def invite_agent(data: dict[str, Any]) -> Any:
    """Invite an agent (admin): a new account without a password, and a mail with a link to
    set one."""
    if data.get("language") and data["language"] not in current_app.config["LANGUAGES"]:
        raise Invalid({"language": _("Unknown language.")})
    agent = agent_verbs.invite_agent(
        db.session,
        me(),
        email=data["email"],
        name=data["name"],
        role=data["role"],
        kb_editor=data["kb_editor"],
        team_ids=data["teams"],
        language=data.get("language"),
    )
    db.session.flush()
    return commit_response(agent_json(agent), 201)


@blp.route("/<int:agent_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(AgentPatch)
@blp.response(200, AgentOut)
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
def update_agent(changes: dict[str, Any], agent_id: int) -> Any:
    """Change role, KB-editor permission or active (admin). An admin cannot demote or
    deactivate themselves, and one active admin always remains."""
    agent = _agent(agent_id)
    if "role" in changes or "kb_editor" in changes:
        agent_verbs.change_role(
            db.session,
            me(),
            agent,
            changes.get("role", agent.role.value),
            changes.get("kb_editor", agent.kb_editor),
        )
    if "active" in changes:
        agent_verbs.set_agent_active(db.session, me(), agent, bool(changes["active"]))
    db.session.flush()
    return commit_response(agent_json(agent), 200)


@blp.route("/<int:agent_id>/deactivate", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.response(200, AgentOut)
@errors_doc(blp, 400, 401, 403, 404, 429)
def deactivate_agent(agent_id: int) -> Any:
    """Deactivate (admin): no sign-in, signed out everywhere, their tokens stop working, no
    automatic assignment. `PATCH {"active": true}` reactivates."""
    agent = _agent(agent_id)
    agent_verbs.set_agent_active(db.session, me(), agent, False)
    db.session.flush()
    return commit_response(agent_json(agent), 200)


# --- teams -------------------------------------------------------------------------------------


@team_blp.route("", methods=["GET"])
@team_blp.arguments(PageQuery, location="query", as_kwargs=True)
@team_blp.response(200, TeamPage)
@errors_doc(team_blp, 400, 401, 429)
def list_teams(limit: int, cursor: str | None = None) -> dict[str, Any]:
    """Teams with their members and automatic assignment, newest first."""
    q = id_page(select(Team), Team.id, "teams", cursor, limit).options(selectinload(Team.members))
    rows = list(db.session.scalars(q))
    return {
        "teams": [team_json(t) for t in rows[:limit]],
        "next_cursor": next_cursor(rows, "teams", limit),
    }


@team_blp.route("/<int:team_id>", methods=["GET"])
@team_blp.response(200, TeamOut)
@errors_doc(team_blp, 401, 404, 429)
def get_team(team_id: int) -> dict[str, Any]:
    """One team."""
    return team_json(_team(team_id))


def _save(team: Team | None, data: dict[str, Any], member_ids: list[int]) -> Team:
    return agent_verbs.save_team(
        db.session,
        me(),
        name=data.get("name", team.name if team else ""),
        member_ids=member_ids,
        mode=data.get("assignment_mode", team.assignment_mode.value if team else "off"),
        max_open=data.get("assignment_max_open", team.assignment_max_open if team else None),
        team=team,
        calendar_id=data.get("calendar_id", agent_verbs.Keep.KEEP),
    )


@team_blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@team_blp.arguments(TeamCreate)
@team_blp.response(201, TeamOut)
@team_blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(team_blp, 400, 401, 403, 422, 429)
@idempotent
def create_team(data: dict[str, Any]) -> Any:
    """Create a team (admin)."""
    team = _save(None, data, _known_agents(data["members"], "members"))
    db.session.flush()
    return commit_response(team_json(team), 201)


@team_blp.route("/<int:team_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@team_blp.arguments(TeamPatch)
@team_blp.response(200, TeamOut)
@errors_doc(team_blp, 400, 401, 403, 404, 422, 429)
def update_team(changes: dict[str, Any], team_id: int) -> Any:
    """Change name, members (the whole set) or automatic assignment (admin)."""
    team = _team(team_id)
    members = (
        _known_agents(changes["members"], "members")
        if "members" in changes
        else [m.id for m in team.members]
    )
    _save(team, changes, members)
    db.session.flush()
    return commit_response(team_json(team), 200)


@team_blp.route("/<int:team_id>/members", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@team_blp.arguments(MemberIn)
@team_blp.response(200, TeamOut)
@errors_doc(team_blp, 401, 403, 404, 422, 429)
def add_member(data: dict[str, Any], team_id: int) -> Any:
    """Add an agent to the team (admin)."""
    team = _team(team_id)
    [agent_id] = _known_agents([data["agent"]], "agent")
    _save(team, {}, [m.id for m in team.members] + [agent_id])
    db.session.flush()
    return commit_response(team_json(team), 200)


@team_blp.route("/<int:team_id>/members/<int:agent_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@team_blp.response(200, TeamOut)
@errors_doc(team_blp, 401, 403, 404, 429)
def remove_member(team_id: int, agent_id: int) -> Any:
    """Take an agent out of the team (admin)."""
    team = _team(team_id)
    members = [m.id for m in team.members]
    if agent_id not in members:
        raise NotFound(_("Agent not found."))
    _save(team, {}, [m for m in members if m != agent_id])
    db.session.flush()
    return commit_response(team_json(team), 200)
