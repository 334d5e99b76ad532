"""A ticket's history speaks the reader's language: no line shows a raw action like
``chat.accepted``, in English or Bengali, for every action the code records."""

from __future__ import annotations

import ast
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Ticket
from helpdesk.services import audit
from helpdesk.web.audit_labels import describe, has_label
from tests.conftest import AgentClient, bn

ROOT = Path(__file__).resolve().parents[2]
# The functions that pass an action through rather than naming one.
PASS_THROUGH = {
    ("helpdesk/services/audit.py", "record"),
    ("helpdesk/services/messages.py", "record_now"),
    ("channels/chat/history.py", "record"),
}
# Modules whose ``record(session, subject, actor, action, ...)`` writes a history line.
RECORDERS = {"audit", "chat_history"}


def recorded_actions() -> set[str]:
    """Every action named by a call of ``audit.record`` (``chat_history.record``),
    ``audit.new_event`` or ``record_now``."""
    found: set[str] = set()
    for package in ("helpdesk", "channels", "kb"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            where = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not isinstance(
                    node.func, ast.Attribute | ast.Name
                ):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                owner = node.func.value if isinstance(node.func, ast.Attribute) else None
                position = {"new_event": 2, "record_now": 3}.get(name)
                if name == "record" and isinstance(owner, ast.Name) and owner.id in RECORDERS:
                    position = 3
                if position is None:
                    continue
                arg = node.args[position] if len(node.args) > position else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                else:
                    enclosing = {
                        f.name
                        for f in ast.walk(tree)
                        if isinstance(f, ast.FunctionDef)
                        and f.lineno <= node.lineno <= (f.end_lineno or 0)
                    }
                    assert any((where, f) in PASS_THROUGH for f in enclosing), (
                        f"{where}:{node.lineno} records an action that is not a literal: "
                        "name it, so this test can check its label"
                    )
    return found


def test_every_recorded_action_has_a_label(app: Flask) -> None:
    actions = recorded_actions()
    assert {"ticket.created", "chat.accepted", "message.bounced"} <= actions  # the walk works
    assert sorted(a for a in actions if not has_label(a)) == []


def test_the_history_shows_words_not_action_names(
    app: Flask, session: Session, ticket: Ticket, agent: Agent, agent_client: AgentClient
) -> None:
    audit.record(session, ticket, agent, "chat.accepted")
    audit.record(session, ticket, agent, "chat.transferred", to="Ayesha Rahman")
    audit.record(session, ticket, None, "message.bounced", reason="550 no such user")
    audit.record(session, ticket, agent, "ticket.merged", source=1042, messages=3)
    session.commit()
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    history = page.split('class="card history"')[1]
    for raw in ("chat.accepted", "chat.transferred", "message.bounced", "ticket.merged"):
        assert raw not in history
    assert "accepted the chat" in history
    assert "transferred the chat to Ayesha Rahman" in history
    assert "the mail bounced: 550 no such user" in history
    assert "merged ticket #1042 into this one" in history

    agent_client.post("/language", {"lang": "bn"})
    history = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    history = history.split('class="card history"')[1]
    assert "chat.accepted" not in history
    assert bn("accepted the chat") in history


def test_an_unknown_action_is_not_shown_raw(app: Flask) -> None:
    with app.test_request_context():
        assert describe("plugin.frobnicated", {}) == "made a change"
