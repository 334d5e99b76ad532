"""``ticket.updated`` is coalesced on the way out (helpdesk/realtime.py, ``TicketUpdates``): a
burst of chat lines reaches every agent's queue as one batch per window, each ticket once, with
its final state."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat
from channels.chat.lines import agent_message, visitor_message
from channels.chat.tokens import new_visitor
from helpdesk.models import AgentRole, Ticket, TicketStatus
from helpdesk.realtime import TicketUpdates
from helpdesk.services import tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.events import Event, EventRecorder
from helpdesk.services.presence import agent_connected, set_presence
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess, Visitor
from tests.conftest import PASSWORD


def _update(ticket_id: int, version: int, *, coalesce: bool = True) -> Event:
    payload = {"id": ticket_id, "version": version}
    return Event("ticket.updated", payload, ("agents",), coalesce=coalesce)


class _Clock:
    """A flush scheduled by the coalescer runs when the test says so, not after a real wait."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def start(self, fn: Callable[..., Any], *args: Any) -> None:
        self.scheduled.append((fn, args))

    def run_scheduled(self) -> None:
        pending, self.scheduled = self.scheduled, []
        for fn, args in pending:
            fn(*args)


def test_a_burst_goes_out_once_per_ticket_with_the_latest_state() -> None:
    sent: list[Event] = []
    clock = _Clock()
    updates = TicketUpdates(sent.append, 60.0, clock.start, lambda _s: None)

    updates.publish(_update(1, 1))  # the first after a quiet window: at once
    assert [(e.payload["id"], e.payload["version"]) for e in sent] == [(1, 1)]

    for ticket_id, version in [(1, 2), (2, 7), (1, 4), (1, 3), (3, 1)]:  # (1, 3) came late
        updates.publish(_update(ticket_id, version))
    assert len(sent) == 1 and len(clock.scheduled) == 1  # held, one flush scheduled

    clock.run_scheduled()
    assert [(e.payload["id"], e.payload["version"]) for e in sent[1:]] == [(1, 4), (2, 7), (3, 1)]

    # Right after a flush the window starts again: held, not sent.
    updates.publish(_update(2, 8))
    assert len(sent) == 4 and len(clock.scheduled) == 1
    clock.run_scheduled()
    assert sent[-1].payload == {"id": 2, "version": 8}


def test_an_immediate_update_replaces_an_older_held_one() -> None:
    sent: list[Event] = []
    clock = _Clock()
    updates = TicketUpdates(sent.append, 60.0, clock.start, lambda _s: None)
    updates.publish(_update(1, 1))
    updates.publish(_update(1, 2))  # a chat line: held
    updates.publish(_update(2, 5))  # another chat's line: held
    updates.send_now(_update(1, 3, coalesce=False))  # e.g. the status changed: at once
    clock.run_scheduled()
    # Ticket 1 never steps back to version 2 after 3.
    assert [(e.payload["id"], e.payload["version"]) for e in sent] == [(1, 1), (1, 3), (2, 5)]


def test_only_chat_line_queue_updates_are_coalesced_and_a_zero_window_sends_at_once() -> None:
    assert TicketUpdates.applies(_update(1, 1))
    assert not TicketUpdates.applies(_update(1, 1, coalesce=False))  # status, reply, note...
    created = Event("ticket.created", {"id": 1}, ("agents",), coalesce=True)
    elsewhere = Event("ticket.updated", {"id": 1}, ("ticket:1",), coalesce=True)
    assert not TicketUpdates.applies(created) and not TicketUpdates.applies(elsewhere)

    sent: list[Event] = []
    clock = _Clock()
    updates = TicketUpdates(sent.append, 0.0, clock.start, lambda _s: None)
    for version in (1, 2, 3):
        updates.publish(_update(5, version))
    assert [e.payload["version"] for e in sent] == [1, 2, 3] and not clock.scheduled


def test_chat_lines_mark_their_queue_update_and_other_changes_do_not(
    session: Session, events: EventRecorder
) -> None:
    agent = create_agent(session, "lines@example.com", "Lines", PASSWORD, AgentRole.AGENT)
    agent_connected(session, agent, "sid-lines")
    set_presence(session, agent, "online")
    session.commit()
    visitor, _token = new_visitor()
    started = start_chat(session, visitor_id=visitor, text="hi", client_id=uuid.uuid4().hex)
    session.commit()

    def queue_updates() -> list[bool]:
        found = [e.coalesce for e in events.events if e.name == "ticket.updated"]
        events.events.clear()
        return found

    queue_updates()
    visitor_message(session, started, text="a line", client_id=uuid.uuid4().hex)
    session.commit()
    assert queue_updates() == [True]
    agent_message(session, started, agent, text="an answer", client_id=uuid.uuid4().hex)
    session.commit()
    assert queue_updates() == [True]
    # The same session's next change is not a chat line: sent at once.
    tickets.set_status(session, started.ticket, TicketStatus.PENDING, agent)
    session.commit()
    assert queue_updates() == [False]


def test_agents_queue_hears_the_final_state_of_a_busy_chat(
    site: ChatSite, server: ServerProcess
) -> None:
    team = site.team()
    agent = site.agent("Queue Watcher", team)
    watcher = AgentSocket(agent.email)
    watcher.connect(server.url)
    visitor = Visitor()
    visitor.connect(server.url)
    try:
        started = visitor.start("first line", team=team.id)
        assert started["ok"], started
        ticket_id = started["chat"]["ticket_id"]
        for i in range(8):
            assert visitor.say(f"line {i}")["ok"]

        final = watcher.events.wait(
            "ticket.updated", lambda d: d["id"] == ticket_id and d["message_count"] == 9
        )
        version = site.run(lambda s: s.get(Ticket, ticket_id).version)
        assert final["version"] == version  # the state the database holds now
        # Whatever was coalesced, the agent never saw the ticket go backwards.
        versions = [
            d["version"]
            for name, d in watcher.events.drain()
            if name == "ticket.updated" and d["id"] == ticket_id
        ]
        assert versions == sorted(versions) and all(v <= final["version"] for v in versions)
    finally:
        visitor.disconnect()
        watcher.disconnect()
