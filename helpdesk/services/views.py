"""Saved views, remembered views and view counts for the agent queue."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import exists, func, literal, literal_column, or_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from helpdesk.i18n import _
from helpdesk.models import Agent, Team, team_members
from helpdesk.models.views import AgentPreference, SavedView
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.queue import QueueFilter, base_query


def count_view(session: Session, flt: QueueFilter, agent: Agent | None) -> int:
    """How many tickets a view holds: from the exact counters for a plain built-in view, else
    one COUNT over the view's own index (no joins)."""
    from helpdesk.services.counts import builtin_count

    if flt == QueueFilter(view=flt.view, sort=flt.sort):
        fast = builtin_count(session, flt.view, agent.id if agent else None)
        if fast is not None:
            return fast
    q = base_query(session, flt, agent).with_only_columns(func.count(), maintain_column_froms=True)
    return int(session.scalar(q) or 0)


class Named(NamedTuple):
    id: int
    name: str


def teams_and_agents(session: Session, agent: Agent) -> tuple[list[Named], set[int], list[Named]]:
    """The queue page's lists in one statement: every team by name, the ids of those ``agent``
    belongs to, and the active agents by name (id and name only). One round trip, not two: on
    PostgreSQL each is a wake-up of the database's process, which a loaded machine makes wait."""
    member = exists().where(team_members.c.team_id == Team.id, team_members.c.agent_id == agent.id)
    kind: ColumnClause[Any] = literal_column("kind")
    lists = union_all(
        select(literal(0).label("kind"), Team.id, Team.name, member.label("flag")),
        select(literal(1), Agent.id, Agent.name, literal(False)).where(Agent.active.is_(True)),
    )
    teams: list[Named] = []
    mine: set[int] = set()
    agents: list[Named] = []
    for row_kind, row_id, name, flag in session.execute(
        lists.order_by(kind, literal_column("name"))
    ):
        if row_kind == 0:
            teams.append(Named(row_id, name))
            if flag:
                mine.add(row_id)
        else:
            agents.append(Named(row_id, name))
    return teams, mine, agents


def visible_views(session: Session, agent: Agent) -> list[SavedView]:
    teams = select(team_members.c.team_id).where(team_members.c.agent_id == agent.id)
    return list(
        session.scalars(
            select(SavedView)
            .where(or_(SavedView.owner_id == agent.id, SavedView.team_id.in_(teams)))
            .order_by(SavedView.name)
        )
    )


def save_view(
    session: Session, agent: Agent, name: str, args: dict[str, Any], team_id: int | None = None
) -> SavedView:
    name = " ".join(name.split())[:120]
    if not name:
        raise ServiceError(_("A view needs a name."))
    flt = QueueFilter.from_args(args)  # validates, and normalises what is stored
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or agent not in team.members:
            raise ServiceError(_("You can share a view only with a team you belong to."))
    view = SavedView(name=name, owner_id=agent.id, team_id=team_id, args=flt.as_args())
    session.add(view)
    session.flush()
    return view


def delete_view(session: Session, agent: Agent, view_id: int) -> None:
    view = session.get(SavedView, view_id)
    if view is None or (view.owner_id != agent.id and not agent.is_admin):
        raise NotFound(_("View not found."))
    session.delete(view)


def remember(session: Session, agent: Agent, args: dict[str, Any]) -> None:
    pref = session.get(AgentPreference, agent.id)
    if pref is None:
        pref = AgentPreference(agent_id=agent.id, last_queue_args={})
        session.add(pref)
    if pref.last_queue_args != args:
        pref.last_queue_args = args


def remembered(session: Session, agent: Agent) -> dict[str, Any]:
    pref = session.get(AgentPreference, agent.id)
    return dict(pref.last_queue_args) if pref is not None else {}


def view_counts(session: Session, agent: Agent) -> dict[str, int]:
    """Counts of the built-in views and the agent's saved views ("mine", ..., "saved:<id>"):
    the built-in ones from one read of the counters, each saved view one COUNT."""
    from helpdesk.services.counts import builtin_counts

    out = builtin_counts(session, agent.id)
    for saved in visible_views(session, agent):
        try:
            out[f"saved:{saved.id}"] = count_view(session, QueueFilter.from_args(saved.args), agent)
        except ServiceError:
            continue  # a view naming a deleted team or agent simply shows no count
    return out
