"""Automatic assignment per team: off, round robin, or least open tickets.

**When it runs.** Whenever a ticket that is active (new, open, pending), unassigned and not a
live chat ends up in a team whose mode is not ``off``:

- a new ticket opened in a team, and a ticket put into a team by anyone or anything (the mail
  channel's team, the ticket page, a bulk action, a macro, a chat transferred after it ended):
  both go through ``tickets.set_team`` / ``inbound.receive``, which call :func:`auto_assign`;
- a customer reopening a ticket (pending/resolved/closed -> open) that has no assignee or whose
  assignee has been deactivated: :func:`on_reopened`. An assignee who is merely away or offline
  keeps the ticket: they know the case, and reassigning on every lunch break would shuffle
  conversations between people (Zendesk and Zammad keep the assignee on reopen too);
- :func:`assign_waiting` hands out unassigned tickets of auto-assigning teams oldest first,
  for when agents become available after the tickets arrived (a worker task).

Live chats are never assigned here: chat routing offers them to an agent who accepts
(``channels.chat.routing``, which registers the check with :func:`register_exclusion`); an
*ended* chat is an ordinary ticket.

**Who can get a ticket.** A member of the team who is active, *available* and below the team's
cap. Available is the one notion the chat routing uses: the agent chose "online" and has a live
connection (``AgentPresence`` + ``AgentConnection``, heartbeat within ``presence.CONNECTION_TTL``);
"away" and "offline" (chosen, or by closing the last tab) get nothing. The cap counts the
agent's active tickets in every team (the person's workload, not the team's share).

**Round robin** walks the members in a fixed order (by id), starting after the member who got
the team's last ticket (``Team.assignment_last_agent_id``), skipping anyone unavailable or at
the cap. **Least open** picks the agent with the fewest active tickets (from the exact
``ticket_counts``), ties broken in the same round-robin order so equal agents take turns.

**Fair under concurrency.** The pointer lives in the team row, not in a process, so turns
survive restarts. Choosing happens under one lock for the rest of the transaction (the ticket
counter's row ``FOR UPDATE`` on PostgreSQL, see :func:`_lock_team` for why that row; on SQLite
every writing transaction holds the write lock from ``BEGIN IMMEDIATE``) and re-reads the team,
so two workers assigning at once take turns: the second sees the first one's pointer and counts
once the first commits.

Like every service here, nothing commits; the assignment is audited (``ticket.assignee`` with
``auto`` = the mode) and announced with the ticket's normal ``ticket.updated`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from helpdesk.i18n import _, _l
from helpdesk.models import (
    Agent,
    AssignmentMode,
    Team,
    Ticket,
    TicketCount,
    TicketCounter,
    TicketStatus,
    team_members,
)
from helpdesk.services import audit, tickets
from helpdesk.services.audit import Actor
from helpdesk.services.errors import ServiceError
from helpdesk.services.presence import available_agent_ids
from helpdesk.unit_of_work import unit_of_work

log = logging.getLogger("helpdesk.assignment")

MAX_OPEN_LIMIT = 10_000
ACTIVE = [s.value for s in TicketStatus if s.active]
MODE_LABELS = {
    AssignmentMode.OFF: _l("Off"),
    AssignmentMode.ROUND_ROBIN: _l("Round robin"),
    AssignmentMode.LEAST_OPEN: _l("Least open tickets"),
}
# How many waiting tickets one worker round hands out per team (the rest next round).
WAITING_BATCH = 50


def mode_label(mode: AssignmentMode | str) -> str:
    return str(MODE_LABELS[AssignmentMode(mode)])


def parse_mode(value: AssignmentMode | str) -> AssignmentMode:
    """``round_robin`` or ``round-robin`` (the command line's spelling)."""
    try:
        return AssignmentMode(str(value).strip().lower().replace("-", "_"))
    except ValueError:
        raise ServiceError(_("Unknown assignment mode: %(mode)s", mode=value)) from None


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def set_assignment(
    session: Session,
    team: Team,
    mode: AssignmentMode | str,
    max_open: int | None,
    actor: Actor,
) -> None:
    """Change a team's automatic assignment (audited without a ticket)."""
    new_mode = parse_mode(mode)
    if max_open is not None and not 1 <= max_open <= MAX_OPEN_LIMIT:
        raise ServiceError(
            _("The maximum of open tickets must be between 1 and %(n)d.", n=MAX_OPEN_LIMIT)
        )
    if (team.assignment_mode, team.assignment_max_open) == (new_mode, max_open):
        return
    old = (team.assignment_mode, team.assignment_max_open)
    team.assignment_mode = new_mode
    team.assignment_max_open = max_open
    session.flush()
    audit.record(
        session,
        None,
        actor,
        "team.assignment",
        team_id=team.id,
        team=team.name,
        **{
            "from": {"mode": old[0].value, "max_open": old[1]},
            "to": {"mode": new_mode.value, "max_open": max_open},
        },
    )


# ---------------------------------------------------------------------------------------------
# Availability and load
# ---------------------------------------------------------------------------------------------


def open_counts(session: Session, agent_ids: Iterable[int]) -> dict[int, int]:
    """Active (new + open + pending) tickets assigned to each agent, across all teams."""
    ids = list(agent_ids)
    counts = dict.fromkeys(ids, 0)
    if not ids:
        return counts
    rows = session.execute(
        select(TicketCount.assignee_key, func.sum(TicketCount.n))
        .where(TicketCount.status.in_(ACTIVE), TicketCount.assignee_key.in_(ids))
        .group_by(TicketCount.assignee_key)
    )
    for agent_id, n in rows:
        counts[int(agent_id)] = int(n or 0)
    return counts


def member_ids(session: Session, team: Team) -> list[int]:
    return sorted(
        session.scalars(select(team_members.c.agent_id).where(team_members.c.team_id == team.id))
    )


# ---------------------------------------------------------------------------------------------
# Choosing
# ---------------------------------------------------------------------------------------------


def _turn_order(ids: list[int], last: int | None) -> list[int]:
    """Members in round-robin order: those after the last one served first, then from the top."""
    ids = sorted(ids)
    if last is None:
        return ids
    return [i for i in ids if i > last] + [i for i in ids if i <= last]


def choose_agent(session: Session, team: Team) -> Agent | None:
    """The member who gets the team's next ticket, or None when nobody can take one."""
    mode = team.assignment_mode
    if mode is AssignmentMode.OFF:
        return None
    candidates = sorted(available_agent_ids(session, member_ids(session, team)))
    if not candidates:
        return None
    loads: dict[int, int] = {}
    cap = team.assignment_max_open
    if cap is not None or mode is AssignmentMode.LEAST_OPEN:
        # Assignments made earlier in this transaction (a bulk move) must count; the caller may
        # have turned autoflush off, so flush explicitly.
        session.flush()
        loads = open_counts(session, candidates)
    if cap is not None:
        candidates = [i for i in candidates if loads[i] < cap]
    order = _turn_order(candidates, team.assignment_last_agent_id)
    if not order:
        return None
    if mode is AssignmentMode.LEAST_OPEN:
        order.sort(key=lambda i: loads[i])  # stable: equal loads keep their turn order
    return session.get(Agent, order[0])


def _lock_team(session: Session, team_id: int) -> Team:
    """Serialise automatic assignment, then read the team's pointer afresh.

    The lock is the ticket counter's row, not the team's: opening a ticket already takes it
    first thing (``next_ticket_number``), and both paths then write ``ticket_counts`` rows. A
    lock on the team row would be taken *after* a new ticket's counts but *before* a moved
    ticket's, and PostgreSQL would find the two transactions deadlocked. One lock for all teams
    also makes the cap exact for agents in several teams. On SQLite the transaction already
    holds the database's write lock (``BEGIN IMMEDIATE``).

    The team is re-read once per transaction (``populate_existing``): sessions keep objects
    across commits, and another process may have moved the pointer since.
    """
    held = unit_of_work(session).held
    if f"team:{team_id}" in held:
        team = session.get(Team, team_id)
        assert team is not None
        return team
    session.flush()  # pending changes of this transaction first, or the re-read would drop them
    if not any(name.startswith("team:") for name in held):
        session.execute(
            select(TicketCounter.id).where(TicketCounter.id == 1).with_for_update()
        ).all()
    team = session.scalars(
        select(Team).where(Team.id == team_id).execution_options(populate_existing=True)
    ).one()
    held.add(f"team:{team_id}")
    return team


# Checks that keep a ticket out of auto-assignment: its channel routes it itself.
Exclusion = Callable[[Session, Ticket], bool]
_exclusions: list[Exclusion] = []


def register_exclusion(check: Exclusion) -> None:
    """Never auto-assign a ticket for which ``check(session, ticket)`` is true (the chat
    channel registers "a live chat", which its routing offers to agents itself;
    ``channels.registry.register_chat``). Checks are asked often: answer from the ticket's
    fields without a query when it cannot be yours."""
    if check not in _exclusions:
        _exclusions.append(check)


def _excluded(session: Session, ticket: Ticket) -> bool:
    return any(check(session, ticket) for check in _exclusions)


def _eligible(session: Session, ticket: Ticket) -> bool:
    if ticket.team is None or ticket.assignee is not None or not ticket.active:
        return False
    if ticket.merged_into_id is not None or _excluded(session, ticket):
        return False
    # Asked of the database, not the Team object: sessions keep objects across commits, and an
    # admin may have switched the mode from another process since.
    mode = session.scalar(select(Team.assignment_mode).where(Team.id == ticket.team.id))
    return mode is not None and mode is not AssignmentMode.OFF


def auto_assign(session: Session, ticket: Ticket) -> Agent | None:
    """Assign the ticket by its team's mode if it qualifies (see the module's docstring).

    Returns the agent, or None (not eligible, or nobody available: the ticket stays
    unassigned for :func:`assign_waiting`).
    """
    if not _eligible(session, ticket):
        return None
    assert ticket.team is not None
    team = _lock_team(session, ticket.team.id)
    agent = choose_agent(session, team)
    if agent is None:
        return None
    team.assignment_last_agent_id = agent.id
    tickets.assign_ticket(session, ticket, agent, None, auto=team.assignment_mode.value)
    return agent


def on_reopened(session: Session, ticket: Ticket) -> Agent | None:
    """A customer reopened the ticket: a deactivated assignee gives it back to the team."""
    if ticket.assignee is not None and not ticket.assignee.active:
        if ticket.team is None or ticket.team.assignment_mode is AssignmentMode.OFF:
            return None  # nobody to hand it to automatically: it stays visible as theirs
        tickets.assign_ticket(session, ticket, None, None)
    return auto_assign(session, ticket)


def assign_waiting(session: Session, limit: int = WAITING_BATCH) -> int:
    """Hand out unassigned active tickets of auto-assigning teams, oldest first.

    Stops per team at the first ticket nobody can take. Returns how many were assigned.
    """
    done = 0
    teams = session.scalars(
        select(Team).where(Team.assignment_mode != AssignmentMode.OFF).order_by(Team.id)
    ).all()
    for team in teams:
        if not available_agent_ids(session, member_ids(session, team)):
            continue  # the common case when everybody is away: one cheap query, no lock
        waiting = session.scalars(
            select(Ticket)
            .where(*_waiting(team.id))
            .order_by(Ticket.created_at, Ticket.id)
            .limit(limit)
        ).all()
        for ticket in waiting:
            if _excluded(session, ticket):
                continue
            if auto_assign(session, ticket) is None:
                break
            done += 1
    return done


def _waiting(team_id: int) -> tuple[ColumnElement[bool], ...]:
    """Conditions of a ticket waiting for automatic assignment in the team."""
    return (
        Ticket.team_id == team_id,
        Ticket.assignee_id.is_(None),
        Ticket.active.is_(True),
        Ticket.merged_into_id.is_(None),
    )


def _anything_to_assign(session: Session) -> bool:
    teams = session.scalars(select(Team).where(Team.assignment_mode != AssignmentMode.OFF))
    return any(
        session.scalar(select(Ticket.id).where(*_waiting(t.id)).limit(1)) is not None
        and available_agent_ids(session, member_ids(session, t))
        for t in teams
    )


def assign_waiting_task(app: Flask) -> int:
    """Worker task: one round of :func:`assign_waiting` in its own transaction.

    Runs every few seconds in every worker, so it first looks in a read-only transaction (on
    SQLite a writing one would take the database's write lock each time) and writes only when
    an auto-assigning team has a waiting ticket and someone available.
    """
    from helpdesk.db import read_only_transactions
    from helpdesk.extensions import db

    with read_only_transactions(), db.transaction(app) as session:
        if not _anything_to_assign(session):
            return 0
    with db.transaction(app) as session:
        return assign_waiting(session)


def team_overview(session: Session, team: Team) -> dict[str, Any]:
    """What the admin page shows for a team: members with availability and open tickets."""
    ids = member_ids(session, team)
    available = available_agent_ids(session, ids)
    loads = open_counts(session, ids)
    members = sorted(team.members, key=lambda a: a.name.lower())
    return {
        "team": team,
        "mode": mode_label(team.assignment_mode),
        "members": [
            {
                "agent": a,
                "available": a.id in available,
                "open": loads.get(a.id, 0),
            }
            for a in members
        ],
        "available": len(available),
    }
