"""Who is on a ticket page, over a real `helpdesk serve` process: closing many tabs at once.

Issue 13, item 3: when several tabs closed at the same moment, the disconnect handlers shared one
database session (one ran inside another's commit), logged ``session is in 'committed' state`` and
left their viewers in "Also here" until the heartbeat sweep, 90 s later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from helpdesk.inbound import InboundMessage
from helpdesk.services.inbound import receive
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess

TABS = 6


def _ticket(site: ChatSite) -> int:
    def make(session: Any) -> int:
        msg = InboundMessage("email", "tabs@example.com", "Where is it?", subject="Many tabs")
        return int(receive(session, msg).ticket.id)

    return int(site.run(make))


def _names(presence: Any) -> list[str]:
    return [v["name"] for v in presence["viewers"]]


def _close_abruptly(sock: AgentSocket) -> None:
    """As a closing browser tab does: the WebSocket closes, no Socket.IO goodbye first."""
    assert sock.sio is not None
    ws = sock.sio.eio.ws
    assert ws is not None
    ws.close()


def _fall_silent(sock: AgentSocket) -> None:
    """As a laptop whose lid closed or whose network went: the connection stays open but
    nothing comes back, not even the answers to the server's pings."""
    assert sock.sio is not None
    sock.sio.eio._send_packet = lambda _pkt: None  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def quick_pings(site: ChatSite) -> ServerProcess:
    """A server that pings every second and gives up on a client silent for 1.5 s more."""
    return site.serve(
        env={"HELPDESK_SOCKETIO_PING_INTERVAL": "1", "HELPDESK_SOCKETIO_PING_TIMEOUT": "1.5"}
    )


@pytest.mark.parametrize("gone", [_close_abruptly, _fall_silent], ids=["closed", "silent"])
def test_tabs_gone_at_once_leave_the_ticket_at_once(
    site: ChatSite, quick_pings: ServerProcess, gone: Callable[[AgentSocket], None]
) -> None:
    """Closed tabs are gone at once; silent ones (a laptop closed with the ticket open) are
    closed by the server's ping timeout, some of them while it sends the others' departure
    to the room: each disconnect is then handled inside another's, and must still count."""
    server = quick_pings
    ticket_id = _ticket(site)
    stay = AgentSocket(site.agent("Alma").email)
    stay.connect(server.url, online=False)
    assert stay.call("join_ticket", {"ticket_id": ticket_id}) == {"ok": True}

    # Three colleagues, two tabs each, all on the ticket.
    tabs: list[AgentSocket] = []
    names = ["Bodhi", "Chandra", "Dipa"]
    leaving: list[int] = []
    for name in names:
        agent = site.agent(name)
        leaving.append(agent.id)
        first = AgentSocket(agent.email)
        first.login(server.url)
        for _i in range(TABS // len(names)):
            tab = AgentSocket(agent.email)
            tab.http = first.http  # the same browser: one session cookie, several tabs
            tab.connect(server.url)  # and online for chats
            assert tab.call("join_ticket", {"ticket_id": ticket_id}) == {"ok": True}
            tabs.append(tab)
    stay.events.wait("ticket.presence", lambda d: _names(d) == ["Alma", *names])
    stay.events.drain()
    stay.events.seen.clear()  # only what comes after the tabs close counts
    log_before = server.log.read_text(errors="replace")

    # Every tab closes at the same moment.
    go = threading.Barrier(len(tabs))

    def close(tab: AgentSocket) -> None:
        go.wait()
        gone(tab)

    threads = [threading.Thread(target=close, args=(tab,)) for tab in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # The one who stays sees the list shrink to themselves, well before any heartbeat sweep,
    # and no disconnect handler failed on the way.
    try:
        stay.events.wait("ticket.presence", lambda d: _names(d) == ["Alma"], timeout=10)
        # And each of them is offline for everyone (chat routing heard it too).
        for agent_id in leaving:
            stay.events.wait(
                "presence.updated", lambda d, a=agent_id: d == {"agent_id": a, "status": "offline"}
            )
    finally:
        logged = server.log.read_text(errors="replace")[len(log_before) :]
        assert "Traceback" not in logged and "failed" not in logged, logged

    def viewers(session: Any) -> list[str]:
        from helpdesk.services import ticket_presence

        return [v["name"] for v in ticket_presence.viewers(session, ticket_id)]

    assert site.run(viewers) == ["Alma"]
    stay.disconnect()
