"""``GET /api/v1/customers/<id>/timeline`` and ``/api/v1/organizations/<id>/timeline``: the
entries' shape per kind, times with their offset, the cursor walk, filters, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from helpdesk.models import Agent, Message, TicketStatus
from helpdesk.services import organizations, tasks, tickets
from tests.api.conftest import ApiClient, error_of
from tests.conftest import MakeTicket
from tests.helpdesk.test_timeline import T0, _history


def test_shape_of_each_kind(
    api: ApiClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    h = _history(session, make_ticket, agent)
    response = api.get(f"/api/v1/customers/{h['customer'].id}/timeline")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    entries = body["entries"]
    assert body["next_cursor"] is None
    assert [e["kind"] for e in entries] == [
        "task",
        "task",
        "message",
        "chat",
        "status",
        "note",
        "status",
        "message",
        "message",
    ]
    for e in entries:
        assert datetime.fromisoformat(e["at"]).utcoffset() is not None
    chat = entries[3]
    assert chat["channel"] == "chat" and chat["ticket"]["number"] == h["chat"].ticket.number
    assert chat["chat"]["page_url"] == "https://shop.example/pricing"
    assert chat["chat"]["id"] == h["chat"].id and chat["chat"]["lines"] == 1
    assert chat["at"] == (T0 + timedelta(days=1)).isoformat()
    status = entries[4]
    assert status["change"] == {
        "from": "open",
        "to": "resolved",
        "actor": {"type": "agent", "name": agent.name},
    }
    assert status["ticket"] == {
        "id": h["mail"].id,
        "number": h["mail"].number,
        "subject": "Invoice",
    }
    note = entries[5]
    assert note["message"]["preview"] == "She pays yearly." and note["channel"] == "email"
    first = entries[8]["message"]
    assert first["direction"] == "inbound" and first["author"]["type"] == "customer"
    assert first["preview"] == "Where is my invoice?"
    due = entries[0]["task"]
    assert due["event"] == "due" and due["title"] == "Call Rina back"
    assert datetime.fromisoformat(due["due_at"]) == T0 + timedelta(days=30)
    assert due["assignee"] == agent.name and entries[0]["ticket"] is None


def test_cursor_walk_and_filters(
    api: ApiClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    made = [make_ticket("walk@example.com", text=f"Mail {i}").ticket for i in range(5)]
    for t in made:
        tickets.add_note(session, t, agent, "noted")
        tickets.set_status(session, t, TicketStatus.PENDING, agent)
    session.flush()
    session.query(Message).filter(Message.ticket_id.in_([t.id for t in made])).update(
        {"created_at": T0}
    )
    session.commit()
    url = f"/api/v1/customers/{made[0].customer_id}/timeline"
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(10):
        query = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        body = api.get(url, query_string=query).get_json()
        seen.extend(
            (e["kind"], e.get("message", e.get("change", {})).get("id", 0)) for e in body["entries"]
        )
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 15
    everything = api.get(url, query_string={"limit": 100}).get_json()["entries"]
    assert [e["kind"] for e in everything] == [k for k, _id in seen]
    notes = api.get(url, query_string={"kind": "note"}).get_json()["entries"]
    assert [e["kind"] for e in notes] == ["note"] * 5
    chats = api.get(url, query_string={"channel": "chat"}).get_json()["entries"]
    assert chats == []
    assert error_of(api.get(url, query_string={"cursor": "nope"}), 400)["code"] == "invalid_cursor"
    assert error_of(api.get(url, query_string={"kind": "sms"}), 422)["code"]
    assert error_of(api.get("/api/v1/customers/999999/timeline"), 404)["code"] == "not_found"


def test_organization_timeline(
    api: ApiClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    org = organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    make_ticket("ana@acme.example", text="From Ana")
    make_ticket("bo@acme.example", text="From Bo")
    make_ticket("x@else.example", text="Elsewhere")
    tasks.create_task(
        session,
        agent,
        title="Renewal",
        due_at=datetime(2030, 1, 1, tzinfo=UTC),
        assignee=agent,
        organization=org,
    )
    session.commit()
    body = api.get(f"/api/v1/organizations/{org.id}/timeline").get_json()
    previews = {e["message"]["preview"] for e in body["entries"] if e["kind"] == "message"}
    assert previews == {"From Ana", "From Bo"}
    assert {e["task"]["title"] for e in body["entries"] if e["kind"] == "task"} == {"Renewal"}
    assert error_of(api.get("/api/v1/organizations/999999/timeline"), 404)["code"] == "not_found"
