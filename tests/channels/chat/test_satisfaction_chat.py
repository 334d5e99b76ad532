"""The rating at a chat's end, over a real `helpdesk serve` process with Socket.IO clients: the
widget hears it may offer one (``settings.rating``); ``chat.rate`` before the end is refused,
a bad score gets the error acknowledgement naming the field, and after the agent ends the chat
the visitor's score and comment are recorded on the chat ticket's survey (channel ``chat``,
the agent rated), changeable; nobody else's chat can be rated from this connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import SatisfactionRating
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess, Visitor


def _surveys(site: ChatSite, ticket_id: int) -> list[tuple[Any, ...]]:
    def q(session: Session) -> list[tuple[Any, ...]]:
        rows = session.scalars(
            select(SatisfactionRating).where(SatisfactionRating.ticket_id == ticket_id)
        )
        return [(r.score, r.comment, r.channel, r.agent_id) for r in rows]

    result: list[tuple[Any, ...]] = site.run(q)
    return result


def test_the_visitor_rates_the_chat_at_its_end(site: ChatSite, server: ServerProcess) -> None:
    team = site.team()
    agent = site.agent("Rating Agent", team)
    alex = AgentSocket(agent.email)
    alex.connect(server.url)
    visitor = Visitor(language="bn")
    hello = visitor.connect(server.url)
    assert hello["settings"]["rating"] == {"enabled": True, "scale": "good_bad"}
    started = visitor.start(
        "Where is my parcel?", name="Rina", email="rina@example.com", team=team.id
    )
    ticket_id = started["chat"]["ticket_id"]
    alex.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id)
    assert alex.call("chat.accept", {"ticket_id": ticket_id})["ok"]
    visitor.events.wait("chat.state", lambda d: d["status"] == "active")

    early = visitor.call("chat.rate", {"score": "good"})
    assert early["ok"] is False and early["code"] == "not_rateable"
    assert early["error"] == "এই চ্যাটে দেওয়ার মতো কোনো মূল্যায়ন নেই।"  # in the visitor's language
    assert _surveys(site, ticket_id) == []

    assert alex.call("chat.end", {"ticket_id": ticket_id})["ok"]
    visitor.events.wait("chat.state", lambda d: d["status"] == "ended")

    bad = visitor.call("chat.rate", {"score": "meh"})
    assert bad["ok"] is False and bad["code"] == "invalid" and bad["field"] == "score"
    missing = visitor.call("chat.rate", {"comment": "no score"})
    assert missing["ok"] is False and missing["code"] == "missing" and missing["field"] == "score"

    one_click = visitor.call("chat.rate", {"score": "bad"})
    assert one_click == {"ok": True, "rating": {"scale": "good_bad", "score": 1, "comment": ""}}
    changed = visitor.call("chat.rate", {"score": "good", "comment": "দ্রুত উত্তর"})
    assert changed["ok"] and changed["rating"]["score"] == 5
    assert _surveys(site, ticket_id) == [(5, "দ্রুত উত্তর", "chat", agent.id)]

    # Another visitor (no chat of theirs) cannot rate anything.
    stranger = Visitor()
    stranger.connect(server.url)
    refused = stranger.call("chat.rate", {"score": "bad"})
    assert refused["ok"] is False and refused["code"] == "not_found"
    assert _surveys(site, ticket_id) == [(5, "দ্রুত উত্তর", "chat", agent.id)]
    for client in (visitor, stranger):
        client.disconnect()
    alex.disconnect()
