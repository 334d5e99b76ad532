"""Automatic assignment per team (SQLite and PostgreSQL): round robin and least open tickets are
fair, availability and the cap are respected, concurrent assigners take turns, every automatic
assignment is audited and announced, live chats are left to chat routing; the admin pages and
the command line change a team's mode."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from itertools import pairwise

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat
from channels.chat.models import ChatStatus
from channels.email.accounts import ServerConfig, add_email_channel
from channels.email.ingest import process_mail
from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.models import (
    Agent,
    AgentConnection,
    AssignmentMode,
    AuditEvent,
    Team,
    Ticket,
    TicketStatus,
)
from helpdesk.services import assignment, bulk, presence, tickets
from helpdesk.services.agents import create_agent, create_team
from helpdesk.services.errors import ServiceError
from helpdesk.services.events import EventRecorder
from helpdesk.services.presence import agent_connected, agent_disconnected, set_presence
from tests.channels.email.conftest import make_mail
from tests.conftest import PASSWORD, AgentClient, MakeTicket, bn, csrf_token, login

Available = Callable[..., Agent]


@pytest.fixture
def staff(session: Session) -> Available:
    """An agent who is online with the agent page open (or ``online=False``: signed off)."""

    def make(name: str, *, online: bool = True) -> Agent:
        agent = create_agent(session, f"{name.lower()}@example.com", name, PASSWORD)
        if online:
            agent_connected(session, agent, f"sid-{name}")
            set_presence(session, agent, "online")
        session.commit()
        return agent

    return make


def _team(
    session: Session,
    members: list[Agent],
    mode: str = "round_robin",
    max_open: int | None = None,
    name: str = "Support",
) -> Team:
    team = create_team(session, name, members)
    assignment.set_assignment(session, team, mode, max_open, None)
    session.commit()
    return team


def _into_team(session: Session, make_ticket: MakeTicket, team: Team, n: int) -> list[Ticket]:
    """New tickets put into the team the way the mail channel does (after receive)."""
    out = []
    for i in range(n):
        ticket = make_ticket(f"c{i}@example.com", commit=False).ticket
        tickets.set_team(session, ticket, team, None)
        session.commit()
        out.append(ticket)
    return out


def test_round_robin_takes_turns_evenly(
    session: Session, staff: Available, make_ticket: MakeTicket
) -> None:
    ann, ben, cat = staff("Ann"), staff("Ben"), staff("Cat")
    team = _team(session, [cat, ann, ben])
    owners = [t.assignee_id for t in _into_team(session, make_ticket, team, 30)]
    first = sorted([ann.id, ben.id, cat.id])
    assert owners == first * 10  # strict turns, so 10 each
    assert session.get(Team, team.id).assignment_last_agent_id == first[-1]  # type: ignore[union-attr]


def test_the_turn_survives_a_new_process(
    app: Flask, session: Session, staff: Available, make_ticket: MakeTicket
) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    team = _team(session, [ann, ben])
    assert [t.assignee_id for t in _into_team(session, make_ticket, team, 1)] == [ann.id]
    # A fresh session (another process after a restart) continues with the next member.
    ticket = make_ticket("later@example.com").ticket
    with db.transaction(app) as other:
        t = other.get(Ticket, ticket.id)
        assert t is not None
        tickets.set_team(other, t, other.get(Team, team.id), None)
        assert t.assignee is not None and t.assignee.id == ben.id


def test_least_open_picks_the_agent_with_fewest_active_tickets(
    session: Session, staff: Available, make_ticket: MakeTicket
) -> None:
    ann, ben, cat = staff("Ann"), staff("Ben"), staff("Cat")
    # Workload from before: Ann 3 open, Ben 1 open + 2 resolved (resolved do not count), Cat 0.
    for owner, status in [(ann, "open")] * 3 + [(ben, "open")] + [(ben, "resolved")] * 2:
        t = make_ticket(f"old-{uuid.uuid4().hex[:6]}@example.com", commit=False).ticket
        tickets.assign_ticket(session, t, owner, None)
        tickets.set_status(session, t, status, None)
    session.commit()
    team = _team(session, [ann, ben, cat], mode="least_open")
    owners = [t.assignee_id for t in _into_team(session, make_ticket, team, 5)]
    # The fewest open first; between equals the one whose turn it is (Ben before Cat again).
    assert owners == [cat.id, ben.id, cat.id, ben.id, cat.id]
    loads = assignment.open_counts(session, [ann.id, ben.id, cat.id])
    assert loads == {ann.id: 3, ben.id: 3, cat.id: 3}


def test_only_available_members_get_tickets(
    app: Flask, session: Session, staff: Available, make_ticket: MakeTicket
) -> None:
    here = staff("Here")
    away = staff("Away")
    set_presence(session, away, "away")
    closed_tab = staff("Closed")
    agent_disconnected(session, closed_tab, "sid-Closed")
    signed_off = staff("Never", online=False)
    gone = staff("Gone")
    gone.active = False
    stale = staff("Stale")
    # A server killed outright leaves its connection row; it stops counting after the TTL.
    session.execute(
        update(AgentConnection)
        .where(AgentConnection.agent_id == stale.id)
        .values(seen_at=utcnow() - presence.CONNECTION_TTL * 2)
    )
    outsider = staff("Outsider")  # available, but not in the team
    session.commit()
    team = _team(session, [here, away, closed_tab, signed_off, gone, stale])
    owners = {t.assignee_id for t in _into_team(session, make_ticket, team, 6)}
    assert owners == {here.id}
    assert outsider.id not in owners

    # Nobody available: the ticket waits unassigned, and is handed out once someone is back.
    set_presence(session, here, "away")
    session.commit()
    [waiting] = _into_team(session, make_ticket, team, 1)
    assert waiting.assignee_id is None
    assert assignment.assign_waiting_task(app) == 0
    set_presence(session, away, "online")
    session.commit()
    assert assignment.assign_waiting_task(app) == 1
    session.expire_all()
    assert session.get(Ticket, waiting.id).assignee_id == away.id  # type: ignore[union-attr]


def test_the_cap_is_respected_and_freed_capacity_is_used(
    app: Flask, session: Session, staff: Available, make_ticket: MakeTicket
) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    team = _team(session, [ann, ben], max_open=2)
    batch = _into_team(session, make_ticket, team, 5)
    assert Counter(t.assignee_id for t in batch) == {ann.id: 2, ben.id: 2, None: 1}
    # Pending still counts as open work; resolving frees a place.
    tickets.set_status(session, batch[0], TicketStatus.PENDING, ann)
    session.commit()
    assert assignment.assign_waiting_task(app) == 0
    tickets.set_status(session, batch[1], TicketStatus.RESOLVED, ben)
    session.commit()
    assert assignment.assign_waiting_task(app) == 1
    session.expire_all()
    assert session.get(Ticket, batch[4].id).assignee_id == ben.id  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["round_robin", "least_open"])
def test_concurrent_assigners_take_turns(
    app: Flask, session: Session, staff: Available, make_ticket: MakeTicket, mode: str
) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    team = _team(session, [ann, ben], mode=mode)
    ids = [make_ticket(f"c{i}@example.com").ticket.id for i in range(20)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def mover(mine: list[int]) -> None:
        try:
            start.wait(timeout=30)
            for ticket_id in mine:
                # One transaction per ticket, like two worker processes ingesting mail.
                with db.transaction(app) as s:
                    t = s.get(Ticket, ticket_id)
                    assert t is not None
                    tickets.set_team(s, t, s.get(Team, team.id), None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(ids[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    session.expire_all()
    # In the order the assignments committed, the two agents alternate exactly.
    order = session.scalars(
        select(AuditEvent.data)
        .where(AuditEvent.action == "ticket.assignee", AuditEvent.ticket_id.in_(ids))
        .order_by(AuditEvent.id)
    ).all()
    sequence = [d["to_id"] for d in order]
    assert len(sequence) == 20
    assert all(a != b for a, b in pairwise(sequence)), sequence
    assert Counter(sequence) == {ann.id: 10, ben.id: 10}


def test_automatic_assignment_is_audited_and_announced(
    session: Session,
    staff: Available,
    make_ticket: MakeTicket,
    events: EventRecorder,
    agent_client: AgentClient,
) -> None:
    ann = staff("Ann")
    team = _team(session, [ann])
    ticket = make_ticket().ticket
    tickets.set_team(session, ticket, team, None)  # e.g. the mail channel's team
    session.commit()
    entry = session.scalars(
        select(AuditEvent).where(
            AuditEvent.ticket_id == ticket.id, AuditEvent.action == "ticket.assignee"
        )
    ).one()
    assert entry.actor_agent_id is None and entry.actor_customer_id is None
    assert entry.data == {"from": None, "to": "Ann", "to_id": ann.id, "auto": "round_robin"}
    updates = [
        e for e in events.events if e.name == "ticket.updated" and e.payload["id"] == ticket.id
    ]
    assert updates and updates[-1].payload["assignee"] == {"id": ann.id, "name": "Ann"}
    assert updates[-1].payload["team_id"] == team.id
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "assigned automatically to Ann (round robin)" in page


def test_mail_to_a_channel_with_an_auto_assigning_team(session: Session, staff: Available) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    team = _team(session, [ann, ben], name="বিলিং")
    channel = add_email_channel(
        session,
        "Billing",
        address="billing@helpdesk.test",
        imap=ServerConfig(host="127.0.0.1", port=1143, user="billing", password="secret"),
        team=team.id,
    )
    session.commit()
    owners = []
    for i in range(4):
        result = process_mail(session, make_mail(subject=f"বিল {i}"), channel)
        session.commit()
        assert result.message is not None
        owners.append(result.message.ticket.assignee_id)
    assert owners == [ann.id, ben.id, ann.id, ben.id]


def test_off_and_already_assigned_tickets_are_left_alone(
    session: Session, staff: Available, make_ticket: MakeTicket, agent: Agent
) -> None:
    ann = staff("Ann")
    off = _team(session, [ann], mode="off", name="Manual")
    [t1] = _into_team(session, make_ticket, off, 1)
    assert t1.assignee_id is None
    auto = _team(session, [ann], name="Auto")
    t2 = make_ticket("mine@example.com", commit=False).ticket
    tickets.assign_ticket(session, t2, agent, agent)
    tickets.set_team(session, t2, auto, agent)
    session.commit()
    assert t2.assignee_id == agent.id
    # A resolved ticket moved to the team is not handed out either.
    t3 = make_ticket("done@example.com", commit=False).ticket
    tickets.set_status(session, t3, TicketStatus.RESOLVED, agent)
    tickets.set_team(session, t3, auto, agent)
    session.commit()
    assert t3.assignee_id is None


def test_bulk_move_into_a_team_distributes(
    session: Session, staff: Available, make_ticket: MakeTicket, agent: Agent
) -> None:
    ann, ben, cat = staff("Ann"), staff("Ben"), staff("Cat")
    team = _team(session, [ann, ben, cat], mode="least_open")
    ids = [make_ticket(f"b{i}@example.com").ticket.id for i in range(12)]
    rows = bulk.bulk_update(session, ids, bulk.BulkChange(team_id=team.id), agent)
    session.commit()
    assert Counter(t.assignee_id for t in rows) == {ann.id: 4, ben.id: 4, cat.id: 4}


def test_live_chats_are_left_to_chat_routing(session: Session, staff: Available) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    team = _team(session, [ann, ben])
    started = start_chat(
        session, visitor_id=uuid.uuid4().hex, text="হ্যালো", client_id=uuid.uuid4().hex,
        team_id=team.id,
    )  # fmt: skip
    session.commit()
    assert started.status is ChatStatus.OFFERED  # offered to one agent, who must accept
    assert started.ticket.team_id == team.id and started.ticket.assignee_id is None
    assert session.get(Team, team.id).assignment_last_agent_id is None  # type: ignore[union-attr]


def test_reopened_ticket_of_a_deactivated_agent_goes_back_to_the_team(
    session: Session, staff: Available, make_ticket: MakeTicket
) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    team = _team(session, [ann, ben])
    first, second = _into_team(session, make_ticket, team, 2)
    assert (first.assignee_id, second.assignee_id) == (ann.id, ben.id)
    for t in (first, second):
        tickets.set_status(session, t, TicketStatus.RESOLVED, t.assignee)
    ben.active = False  # Ben left the company
    set_presence(session, ann, "away")  # Ann is at lunch: she keeps her customers
    session.commit()
    staff("Cat")
    team.members.append(session.scalars(select(Agent).where(Agent.name == "Cat")).one())
    session.commit()
    for t in (first, second):
        make_ticket(t.customer.email, subject=f"Re: {t.subject}", text="Still broken",
                    ticket_id=t.id)  # fmt: skip
    session.expire_all()
    cat = session.scalars(select(Agent).where(Agent.name == "Cat")).one()
    assert session.get(Ticket, first.id).assignee_id == ann.id  # type: ignore[union-attr]
    assert session.get(Ticket, second.id).assignee_id == cat.id  # type: ignore[union-attr]


def test_set_assignment_checks_its_input(session: Session, staff: Available) -> None:
    team = _team(session, [staff("Ann")], mode="off")
    with pytest.raises(ServiceError):
        assignment.set_assignment(session, team, "fastest", None, None)
    with pytest.raises(ServiceError):
        assignment.set_assignment(session, team, "round-robin", 0, None)
    assignment.set_assignment(session, team, "least-open", 5, None)
    session.commit()
    assert (team.assignment_mode, team.assignment_max_open) == (AssignmentMode.LEAST_OPEN, 5)
    entry = session.scalars(select(AuditEvent).where(AuditEvent.action == "team.assignment")).all()
    assert entry[-1].data["to"] == {"mode": "least_open", "max_open": 5}


# --- admin pages ------------------------------------------------------------------------------


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> AgentClient:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return AgentClient(client)


def test_admin_creates_and_edits_a_team(
    session: Session, admin_client: AgentClient, staff: Available, make_ticket: MakeTicket
) -> None:
    ann, ben = staff("Ann"), staff("Ben")
    page = admin_client.get("/admin/teams")
    assert page.status_code == 200
    response = admin_client.post(
        "/admin/teams/new",
        {"name": "বিলিং", "members": [str(ann.id), str(ben.id)], "mode": "round_robin",
         "max_open": "3"},
    )  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)
    session.expire_all()
    team = session.scalars(select(Team).where(Team.name == "বিলিং")).one()
    assert {m.id for m in team.members} == {ann.id, ben.id}
    assert (team.assignment_mode, team.assignment_max_open) == (AssignmentMode.ROUND_ROBIN, 3)
    listing = admin_client.get("/admin/teams").get_data(as_text=True)
    assert "বিলিং" in listing and "Round robin" in listing

    # Edit: Ben leaves the team, the mode becomes least open, no cap.
    response = admin_client.post(
        f"/admin/teams/{team.id}",
        {"name": "বিলিং", "members": [str(ann.id)], "mode": "least_open", "max_open": ""},
    )
    assert response.status_code == 302
    session.expire_all()
    team = session.get(Team, team.id)  # type: ignore[assignment]
    assert [m.id for m in team.members] == [ann.id]
    assert (team.assignment_mode, team.assignment_max_open) == (AssignmentMode.LEAST_OPEN, None)
    # And it works: a new ticket in the team goes to Ann.
    [ticket] = _into_team(session, make_ticket, team, 1)
    assert ticket.assignee_id == ann.id


def test_bad_input_is_answered_with_the_form_kept(
    session: Session, admin_client: AgentClient, staff: Available
) -> None:
    ann = staff("Ann")
    response = admin_client.post(
        "/admin/teams/new",
        {"name": "Escalations", "members": [str(ann.id)], "mode": "round_robin",
         "max_open": "-4"},
    )  # fmt: skip
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert 'value="Escalations"' in body
    assert session.scalar(select(Team).where(Team.name == "Escalations")) is None
    _team(session, [ann], name="Taken")
    response = admin_client.post(
        "/admin/teams/new", {"name": "Taken", "mode": "off", "max_open": ""}
    )
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)


def test_team_pages_are_for_admins_only_and_need_csrf(
    app: Flask, agent_client: AgentClient, admin: Agent, session: Session
) -> None:
    team = _team(session, [], name="Private")
    assert agent_client.get("/admin/teams").status_code == 404
    assert agent_client.get(f"/admin/teams/{team.id}").status_code == 404
    assert agent_client.post(f"/admin/teams/{team.id}", {"name": "x"}).status_code == 404
    client: FlaskClient = app.test_client()
    login(client, admin.email)
    response = client.post(f"/admin/teams/{team.id}", data={"name": "Hijacked", "mode": "off"})
    assert response.status_code == 400
    assert AgentClient(client).get("/admin/teams/999999").status_code == 404
    session.expire_all()
    assert session.get(Team, team.id).name == "Private"  # type: ignore[union-attr]


def test_team_pages_in_bengali(admin_client: AgentClient, session: Session) -> None:
    _team(session, [], name="Support")
    token = csrf_token(admin_client.client, "/admin/teams")
    admin_client.client.post("/language", data={"lang": "bn", "csrf_token": token})
    body = admin_client.get("/admin/teams").get_data(as_text=True)
    assert 'lang="bn"' in body
    assert bn("New team") in body and "New team" not in body


# --- command line -----------------------------------------------------------------------------


def test_cli_sets_the_assignment_mode(app: Flask, session: Session, staff: Available) -> None:
    ann = staff("Ann")
    team = _team(session, [ann], mode="off", name="বিলিং")
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["team", "set-assignment", "বিলিং", "--mode", "round-robin", "--max-open", "4"]
    )
    assert result.exit_code == 0, result.output
    session.expire_all()
    team = session.get(Team, team.id)  # type: ignore[assignment]
    assert (team.assignment_mode, team.assignment_max_open) == (AssignmentMode.ROUND_ROBIN, 4)
    session.rollback()  # end the read: on SQLite every transaction takes the write lock
    listed = runner.invoke(args=["team", "list", "--json"])
    assert '"mode": "round_robin"' in listed.output and "বিলিং" in listed.output
    session.rollback()  # the listing ran in this app context's session
    bad = runner.invoke(args=["team", "set-assignment", "Nope", "--mode", "off"])
    assert bad.exit_code != 0 and "Nope" in bad.output
    added = runner.invoke(args=["team", "add", "Sales", "--member", "ann@example.com"])
    assert added.exit_code == 0, added.output
