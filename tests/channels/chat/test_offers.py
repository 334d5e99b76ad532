"""Offer timeouts: a chat nobody accepts moves on, and agents who keep missing chats are set away.

In-process on SQLite and PostgreSQL (offers are made "old" by moving ``offered_at`` back, so no
test waits for a clock), then over a real ``helpdesk serve`` whose worker does it by itself,
also after the server was killed and started again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat
from channels.chat.models import ChatSession, ChatStatus, MissedOffers
from channels.chat.payloads import queue_position
from channels.chat.routing import accept, expire_due, expire_offers
from channels.chat.settings import configure_chat_channel
from channels.chat.tokens import new_visitor
from helpdesk.db import utcnow
from helpdesk.models import Agent, AgentPresence, AgentRole, PresenceStatus
from helpdesk.services.agents import create_agent
from helpdesk.services.events import EventRecorder
from helpdesk.services.presence import agent_connected, set_presence
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess, Visitor
from tests.conftest import PASSWORD


def _agent(session: Session, name: str) -> Agent:
    agent = create_agent(session, f"{name.lower()}@example.com", name, PASSWORD, AgentRole.AGENT)
    agent_connected(session, agent, f"sid-{name}")
    set_presence(session, agent, "online")
    session.commit()
    return agent


def _start(session: Session, text: str = "hello") -> ChatSession:
    visitor, _token = new_visitor()
    started = start_chat(session, visitor_id=visitor, text=text, client_id=uuid.uuid4().hex)
    session.commit()
    return started


def _age(session: Session, c: ChatSession, seconds: float) -> None:
    """The offer was made ``seconds`` ago."""
    session.execute(
        update(ChatSession)
        .where(ChatSession.id == c.id)
        .values(offered_at=utcnow() - timedelta(seconds=seconds))
    )
    session.commit()
    session.expire_all()


def _presence(session: Session, agent: Agent) -> PresenceStatus:
    row = session.get(AgentPresence, agent.id)
    assert row is not None
    session.refresh(row)
    return row.status


def test_an_unaccepted_offer_moves_to_the_next_agent_then_waits(
    session: Session, events: EventRecorder
) -> None:
    configure_chat_channel(session, offer_timeout=20, away_after_missed=0)
    ann, ben = _agent(session, "Ann"), _agent(session, "Ben")
    c = _start(session)
    first = c.agent_id
    other = ben.id if first == ann.id else ann.id

    _age(session, c, 19)  # not yet due
    assert expire_offers(session) == 0
    session.commit()
    assert (c.status, c.agent_id) == (ChatStatus.OFFERED, first)

    _age(session, c, 21)
    events.events.clear()
    assert expire_offers(session) == 1
    session.commit()
    assert (c.status, c.agent_id, c.declined) == (ChatStatus.OFFERED, other, [first])
    by_name = {(e.name, e.rooms[0]): e.payload for e in events.events}
    assert by_name[("chat.offer_withdrawn", f"agent:{first}")] == {
        "ticket_id": c.ticket_id, "reason": "timeout", "missed": 1, "presence": None
    }  # fmt: skip
    assert ("chat.offer", f"agent:{other}") in by_name
    # The visitor hears where the chat is.
    assert by_name[("chat.state", f"chat:{c.ticket_id}")]["status"] == "offered"

    # The second agent lets it pass too: nobody is left, it waits, first in line.
    _age(session, c, 21)
    events.events.clear()
    assert expire_offers(session) == 1
    session.commit()
    assert (c.status, c.agent_id) == (ChatStatus.WAITING, None)
    assert sorted(c.declined) == sorted([ann.id, ben.id])
    assert queue_position(session, c) == 1
    queue = [e.payload for e in events.events if e.name == "chat.queue"]
    assert {"ticket_id": c.ticket_id, "position": 1} in queue
    # Both agents still take new chats (away_after_missed = 0: never set away).
    assert {_presence(session, ann), _presence(session, ben)} == {PresenceStatus.ONLINE}
    assert _start(session).status is ChatStatus.OFFERED


def test_missing_offers_in_a_row_sets_the_agent_away(
    session: Session, events: EventRecorder
) -> None:
    configure_chat_channel(session, offer_timeout=30, away_after_missed=2)
    ann = _agent(session, "Ann")
    one = _start(session, "first")
    _age(session, one, 31)
    assert expire_offers(session) == 1
    session.commit()
    missed = session.get(MissedOffers, ann.id)
    assert missed is not None and missed.in_a_row == 1
    assert _presence(session, ann) is PresenceStatus.ONLINE

    # Accepting a chat starts the count afresh.
    two = _start(session, "second")
    assert two.agent_id == ann.id
    accept(session, two, ann)
    session.commit()
    session.refresh(missed)
    assert (missed.in_a_row, missed.total) == (0, 1)

    three, four = _start(session, "third"), _start(session, "fourth")
    assert three.agent_id == four.agent_id == ann.id
    _age(session, three, 31)
    assert expire_offers(session) == 1
    session.commit()
    _age(session, four, 31)
    events.events.clear()
    assert expire_offers(session) == 1
    session.commit()
    assert _presence(session, ann) is PresenceStatus.AWAY
    assert four.status is ChatStatus.WAITING
    withdrawn = [e.payload for e in events.events if e.name == "chat.offer_withdrawn"]
    assert withdrawn == [
        {"ticket_id": four.ticket_id, "reason": "timeout", "missed": 2, "presence": "away"}
    ]
    assert {"agent_id": ann.id, "status": "away"} in [
        e.payload for e in events.events if e.name == "presence.updated"
    ]
    # An agent who is away gets no chats until they choose Online again, which resets the count.
    assert _start(session, "fifth").status is ChatStatus.WAITING
    set_presence(session, ann, "online")
    session.commit()
    session.refresh(missed)
    assert missed.in_a_row == 0


def test_offers_without_a_timeout_stay(session: Session) -> None:
    configure_chat_channel(session, offer_timeout=0)
    _agent(session, "Ann")
    c = _start(session)
    _age(session, c, 3600)
    assert expire_offers(session) == 0
    session.commit()
    assert c.status is ChatStatus.OFFERED


def test_the_worker_task_expires_due_offers(app: Flask, session: Session) -> None:
    configure_chat_channel(session, offer_timeout=10)
    ann, ben = _agent(session, "Ann"), _agent(session, "Ben")
    c = _start(session)
    first = c.agent_id
    assert expire_due(app) == 0  # nothing due: the task only read
    _age(session, c, 11)
    assert expire_due(app) == 1
    session.expire_all()
    moved = session.scalar(select(ChatSession).where(ChatSession.id == c.id))
    assert moved is not None and moved.status is ChatStatus.OFFERED
    assert moved.agent_id in (ann.id, ben.id) and moved.declined == [first]
    assert expire_due(app) == 0


# ---------------------------------------------------------------------------------------------
# Over a real server: its worker moves offers on by itself, and does so after a crash too.
# ---------------------------------------------------------------------------------------------

OFFER_TIMEOUT = 2  # seconds; the server's worker polls every 0.5 s (ChatSite)


def _online(site: ChatSite, server: ServerProcess, name: str, team: object) -> AgentSocket:
    agent = site.agent(name, team)  # type: ignore[arg-type]
    sock = AgentSocket(agent.email)
    sock.connect(server.url)
    return sock


def test_live_offer_times_out_to_the_next_agent_and_the_visitor_keeps_its_place(
    site: ChatSite, server: ServerProcess
) -> None:
    site.run(lambda s: configure_chat_channel(s, offer_timeout=OFFER_TIMEOUT,
                                                   away_after_missed=1))  # fmt: skip
    team = site.team()
    kim = _online(site, server, "Kim", team)
    lou = _online(site, server, "Lou", team)
    visitor = Visitor()
    visitor.connect(server.url)
    ticket_id = visitor.start("anyone there?", team=team.id)["chat"]["ticket_id"]

    # Whoever got it first lets it pass; the other one gets it, a few seconds later.
    wait = OFFER_TIMEOUT + 8
    first_sock, second_sock = (kim, lou) if _offered_to(site, ticket_id) == "Kim" else (lou, kim)
    gone = first_sock.events.wait(
        "chat.offer_withdrawn", lambda d: d["ticket_id"] == ticket_id, timeout=wait
    )
    assert gone["reason"] == "timeout" and gone["presence"] == "away"  # 1 miss = away here
    second_sock.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id, timeout=wait)
    # The second lets it pass too: the visitor waits, told their place in line.
    second_sock.events.wait(
        "chat.offer_withdrawn", lambda d: d["ticket_id"] == ticket_id, timeout=wait
    )
    state = visitor.events.wait("chat.state", lambda d: d["status"] == "waiting", timeout=wait)
    assert state["position"] == 1
    visitor.events.wait("chat.queue", lambda d: d == {"ticket_id": ticket_id, "position": 1})

    # A newcomer gets the waiting chat and takes it.
    mo = _online(site, server, "Mo", team)
    mo.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id)
    assert mo.call("chat.accept", {"ticket_id": ticket_id})["ok"]
    assert visitor.events.wait("chat.state", lambda d: d["status"] == "active")["agent"] == {
        "name": "Mo"
    }
    for s in (kim, lou, mo, visitor):
        s.disconnect()
    site.run(lambda s: configure_chat_channel(s, offer_timeout=30, away_after_missed=2))


def _offered_to(site: ChatSite, ticket_id: int) -> str:
    def q(session: Session) -> str:
        c = session.scalar(select(ChatSession).where(ChatSession.ticket_id == ticket_id))
        assert c is not None and c.agent is not None
        return c.agent.name

    return str(site.run(q))


def test_an_offer_made_before_a_crash_still_times_out_after_the_restart(
    site: ChatSite, server: ServerProcess
) -> None:
    site.run(lambda s: configure_chat_channel(s, offer_timeout=OFFER_TIMEOUT,
                                                   away_after_missed=0))  # fmt: skip
    team = site.team()
    nia = _online(site, server, "Nia", team)
    visitor = Visitor()
    visitor.connect(server.url)
    ticket_id = visitor.start("are you there?", team=team.id)["chat"]["ticket_id"]
    nia.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id)

    # The process dies before the timeout (no timer of it survives), and comes back.
    server.kill()
    nia.disconnect()
    visitor.disconnect()
    server.start()
    # Nia's browser reconnects (she is still online); Oz is new.
    nia2 = AgentSocket(nia.email)
    nia2.http = nia.http
    nia2.connect(server.url)
    oz = _online(site, server, "Oz", team)
    again = Visitor(token=visitor.token)
    assert again.connect(server.url)["chat"]["ticket_id"] == ticket_id
    oz.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id, timeout=OFFER_TIMEOUT + 8)
    assert oz.call("chat.accept", {"ticket_id": ticket_id})["ok"]
    assert again.events.wait("chat.state", lambda d: d["status"] == "active")["agent"] == {
        "name": "Oz"
    }
    for s in (nia2, oz, again):
        s.disconnect()
    site.run(lambda s: configure_chat_channel(s, offer_timeout=30, away_after_missed=2))
