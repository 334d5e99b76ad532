"""The tasks resource as an integrator uses it: create (assignee by email), list with filters
and cursors, get, PATCH (complete, snooze, reopen), delete; times with an offset or a 422 naming
the field; a read token cannot write; the stream says the same as the pages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, AgentRole, Task, WebhookDelivery
from helpdesk.services import stream, webhook_fanout, webhooks
from helpdesk.services.agents import create_agent
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import PASSWORD, MakeTicket, bn


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:9"}  # a webhook's address (never called)


def _names(session: Session, after: int) -> list[str]:
    return [e.name for e in stream.read(session, after=after, limit=100)]


def _at(hours: float) -> str:
    return (utcnow() + timedelta(hours=hours)).astimezone().isoformat()


def test_create_for_an_agent_by_email_linked_to_a_ticket(
    api: ApiClient, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    rumi = create_agent(session, "rumi@example.com", "রুমি", PASSWORD, AgentRole.AGENT)
    session.commit()
    ticket = make_ticket(sender="rahim@example.com").ticket
    start = stream.last_id(session)
    made = api.post(
        "/api/v1/tasks",
        json={
            "title": "Call Rahim back",
            "due_at": "2030-01-02T09:00:00+06:00",
            "remind_at": "2030-01-02T08:30:00+06:00",
            "assignee": "Rumi@Example.com",
            "ticket": ticket.number,
            "notes": "About order 7",
            "recurrence": "weekly",
        },
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body["assignee"] == {"id": rumi.id, "name": "রুমি", "email": "rumi@example.com"}
    assert body["ticket"]["number"] == ticket.number
    assert body["customer"]["id"] == ticket.customer_id
    assert datetime.fromisoformat(body["due_at"]) == datetime.fromisoformat(
        "2030-01-02T03:00:00+00:00"
    )
    assert body["status"] == "open" and body["recurrence"] == "weekly"
    assert body["created_by"]["id"] == agent.id
    assert api.get(f"/api/v1/tasks/{body['id']}").get_json() == body
    assert _names(session, start) == ["task.created"]


def test_a_time_without_an_offset_is_a_422_naming_the_field(api: ApiClient) -> None:
    for field, value in [("due_at", "2030-01-02T09:00:00"), ("due_at", "tomorrow")]:
        response = api.post("/api/v1/tasks", json={"title": "x", field: value})
        error = error_of(response, 422)
        assert set(error["fields"]) == {field}
    response = api.post("/api/v1/tasks", json={"title": "x", "due_at": _at(1), "remind_at": "soon"})
    assert set(error_of(response, 422)["fields"]) == {"remind_at"}
    response = api.post(
        "/api/v1/tasks",
        json={"title": "x", "due_at": _at(1)},
        headers={"Accept-Language": "bn"},
    )
    assert response.status_code == 201
    response = api.post(
        "/api/v1/tasks",
        json={"title": "x", "due_at": "2030-01-02T09:00:00", "assignee": "nobody@example.com"},
        headers={"Accept-Language": "bn"},
    )
    error = error_of(response, 422)
    assert "due_at" in error["fields"]
    assert error["fields"]["due_at"] == bn(
        "An ISO 8601 time with an offset, like 2026-12-08T09:00:00+06:00."
    )
    response = api.post(
        "/api/v1/tasks", json={"title": "x", "due_at": _at(1), "assignee": "nobody@example.com"}
    )
    assert set(error_of(response, 422)["fields"]) == {"assignee"}


def test_list_filters_and_pages(
    api: ApiClient, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    other = create_agent(session, "other@example.com", "Other", PASSWORD, AgentRole.AGENT)
    session.commit()
    ticket = make_ticket().ticket
    ids = []
    for n in range(5):
        made = api.post(
            "/api/v1/tasks", json={"title": f"Mine {n}", "due_at": _at(n + 1)}
        ).get_json()
        ids.append(made["id"])
    api.post(
        "/api/v1/tasks",
        json={"title": "Theirs", "due_at": _at(2), "assignee": str(other.id)},
    )
    api.post(
        "/api/v1/tasks", json={"title": "On the ticket", "due_at": _at(9), "ticket": ticket.number}
    )
    mine = api.get("/api/v1/tasks?assignee=me&limit=2").get_json()
    assert [t["title"] for t in mine["tasks"]] == ["Mine 0", "Mine 1"]
    seen = [t["id"] for t in mine["tasks"]]
    cursor = mine["next_cursor"]
    while cursor:
        page = api.get(f"/api/v1/tasks?assignee=me&limit=2&cursor={cursor}").get_json()
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
    assert seen[:5] == ids and len(seen) == 6  # and the ticket's
    theirs = api.get("/api/v1/tasks?assignee=other@example.com").get_json()
    assert [t["title"] for t in theirs["tasks"]] == ["Theirs"]
    on_ticket = api.get(f"/api/v1/tasks?ticket={ticket.number}").get_json()
    assert [t["title"] for t in on_ticket["tasks"]] == ["On the ticket"]
    soon = api.get(
        "/api/v1/tasks", query_string={"assignee": "me", "due_before": _at(2.5)}
    ).get_json()
    assert [t["title"] for t in soon["tasks"]] == ["Mine 0", "Mine 1"]
    later = api.get(
        "/api/v1/tasks", query_string={"assignee": "me", "due_after": _at(4.5)}
    ).get_json()
    assert [t["title"] for t in later["tasks"]] == ["Mine 4", "On the ticket"]
    error_of(api.get("/api/v1/tasks?due_before=yesterday"), 422)
    error_of(api.get("/api/v1/tasks?cursor=nonsense"), 400)


def test_patch_snoozes_completes_and_reopens(
    api: ApiClient, session: Session, agent: Agent
) -> None:
    made = api.post(
        "/api/v1/tasks",
        json={
            "title": "Daily check",
            "due_at": _at(1),
            "remind_at": _at(0.5),
            "recurrence": "daily",
        },
    ).get_json()
    start = stream.last_id(session)
    later = _at(3)
    snoozed = api.patch(f"/api/v1/tasks/{made['id']}", json={"snooze_until": later})
    assert snoozed.status_code == 200, snoozed.get_data(as_text=True)
    assert datetime.fromisoformat(snoozed.get_json()["remind_at"]) == datetime.fromisoformat(later)
    session.expire_all()
    task = session.get(Task, made["id"])
    assert task is not None and task.next_fire_at == task.remind_at
    error_of(api.patch(f"/api/v1/tasks/{made['id']}", json={"snooze_until": _at(-1)}), 400)

    done = api.patch(f"/api/v1/tasks/{made['id']}", json={"status": "done"}).get_json()
    assert done["status"] == "done" and done["completed_at"]
    following = done["next_task"]
    assert following["status"] == "open" and following["title"] == "Daily check"
    assert datetime.fromisoformat(following["due_at"]) - datetime.fromisoformat(
        done["due_at"]
    ) == timedelta(days=1)
    reopened = api.patch(f"/api/v1/tasks/{made['id']}", json={"status": "open"}).get_json()
    assert reopened["status"] == "open" and reopened["completed_at"] is None
    renamed = api.patch(f"/api/v1/tasks/{made['id']}", json={"title": "Daily check-in"})
    assert renamed.get_json()["title"] == "Daily check-in"
    assert _names(session, start) == [
        "task.updated",
        "task.created",
        "task.completed",
        "task.updated",
        "task.updated",
    ]


def test_delete(api: ApiClient, session: Session) -> None:
    made = api.post("/api/v1/tasks", json={"title": "Gone soon", "due_at": _at(1)}).get_json()
    start = stream.last_id(session)
    assert api.delete(f"/api/v1/tasks/{made['id']}").status_code == 204
    error_of(api.get(f"/api/v1/tasks/{made['id']}"), 404)
    assert _names(session, start) == ["task.deleted"]


def test_a_read_token_reads_but_cannot_write(
    app: Flask, api: ApiClient, agent: Agent, make_token: MakeToken
) -> None:
    made = api.post("/api/v1/tasks", json={"title": "Read me", "due_at": _at(1)}).get_json()
    reader = ApiClient(app, make_token(agent, "read"))
    assert reader.get(f"/api/v1/tasks/{made['id']}").status_code == 200
    assert reader.get("/api/v1/tasks").status_code == 200
    error_of(reader.post("/api/v1/tasks", json={"title": "x", "due_at": _at(1)}), 403)
    error_of(reader.patch(f"/api/v1/tasks/{made['id']}", json={"status": "done"}), 403)
    error_of(reader.delete(f"/api/v1/tasks/{made['id']}"), 403)


def test_a_webhook_subscribed_to_task_events_carries_the_task_as_get_returns_it(
    app: Flask, api: ApiClient, session: Session, admin: Agent
) -> None:
    webhooks.create_webhook(
        session, admin, "http://127.0.0.1:9/hook", ["task.created", "task.completed"]
    )
    session.commit()
    with app.app_context():
        webhook_fanout.fan_out_new(app)  # the consumer starts at the stream's end
    made = api.post("/api/v1/tasks", json={"title": "Hooked", "due_at": _at(1)}).get_json()
    api.patch(f"/api/v1/tasks/{made['id']}", json={"status": "done"})
    with app.app_context():
        webhook_fanout.fan_out_new(app)
    session.expire_all()
    bodies = [
        json.loads(d.request_body)
        for d in session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
    ]
    assert [b["event"] for b in bodies] == ["task.created", "task.completed"]
    done = api.get(f"/api/v1/tasks/{made['id']}").get_json()
    assert bodies[0]["data"] == done == bodies[1]["data"]
