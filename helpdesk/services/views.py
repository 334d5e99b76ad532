"""Saved views, remembered views and view counts for the agent queue."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    String,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from helpdesk.i18n import _
from helpdesk.models import Agent, CustomField, FieldObject, FieldType, Team, team_members
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


class QueueLists(NamedTuple):
    teams: list[Named]
    my_team_ids: set[int]
    agents: list[Named]
    # The ticket fields the filter bar offers (dropdown, multi-select, checkbox), in their
    # order: detached definitions, read for their labels and options only.
    fields: list[CustomField]


FILTERABLE = (FieldType.DROPDOWN, FieldType.MULTI_SELECT, FieldType.CHECKBOX)


def teams_and_agents(session: Session, agent: Agent) -> QueueLists:
    """The queue page's lists in one statement: every team by name, the ids of those ``agent``
    belongs to, the active agents by name (id and name only) and the filterable ticket fields.
    One round trip, not three: on PostgreSQL each is a wake-up of the database's process, which
    a loaded machine makes wait (docs/performance.md counts the page's statements)."""
    member = exists().where(team_members.c.team_id == Team.id, team_members.c.agent_id == agent.id)
    kind: ColumnClause[Any] = literal_column("kind")
    none = null()
    lists = union_all(
        select(
            literal(0).label("kind"),
            Team.id,
            Team.name,
            member.label("flag"),
            cast(none, String).label("key"),
            cast(none, String).label("type"),
            cast(none, String).label("label_bn"),
            cast(none, String).label("options"),
            cast(none, Integer).label("position"),
        ),
        select(
            literal(1),
            Agent.id,
            Agent.name,
            literal(False),
            cast(none, String),
            cast(none, String),
            cast(none, String),
            cast(none, String),
            cast(none, Integer),
        ).where(Agent.active.is_(True)),
        select(
            literal(2),
            CustomField.id,
            CustomField.label_en,
            literal(False),
            CustomField.key,
            cast(CustomField.type, String),
            CustomField.label_bn,
            cast(CustomField.options, String),
            CustomField.position,
        ).where(
            CustomField.object_type == FieldObject.TICKET,
            CustomField.active.is_(True),
            CustomField.type.in_(FILTERABLE),
        ),
    )
    out = QueueLists([], set(), [], [])
    fields: list[tuple[int, int, CustomField]] = []
    for row in session.execute(lists.order_by(kind, literal_column("name"))):
        row_kind, row_id, name, flag, key, type_, label_bn, options, position = row
        if row_kind == 0:
            out.teams.append(Named(row_id, name))
            if flag:
                out.my_team_ids.add(row_id)
        elif row_kind == 1:
            out.agents.append(Named(row_id, name))
        else:
            field = CustomField(
                id=row_id,
                object_type=FieldObject.TICKET,
                key=key,
                type=FieldType(type_),
                label_en=name,
                label_bn=label_bn or "",
                options=json.loads(options) if options else [],
                position=position,
                active=True,
            )
            fields.append((position or 0, row_id, field))
    out.fields.extend(f for _p, _i, f in sorted(fields, key=lambda t: t[:2]))
    return out


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
