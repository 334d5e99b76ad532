"""The tickets resource, the events stream and attachments, through the API as an integrator
uses them; changes are compared with what the agent's pages record."""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AuditEvent, DeliveryStatus, Message
from helpdesk.services import agents, outbox, stream
from tests.api.conftest import ApiClient, error_of
from tests.conftest import AgentClient, MakeTicket
from tests.servers import SmtpSink


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "smtp_sink" in request.fixturenames:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        return {"SMTP_HOST": sink.host, "SMTP_PORT": sink.port}
    return {}


def test_create_answers_with_the_ticket_as_get_returns_it(api: ApiClient, session: Session) -> None:
    team = agents.create_team(session, "Billing")
    session.commit()
    created = api.post(
        "/api/v1/tickets",
        json={
            "subject": "Refund for order 1234",
            "body": "Please refund my order.",
            "customer": {"email": "Buyer@Example.com", "name": "Bea Buyer"},
            "priority": 3,
            "tags": ["refund", "VIP"],
            "team": team.id,
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body == api.get(f"/api/v1/tickets/{body['number']}").get_json()
    assert body["subject"] == "Refund for order 1234" and body["status"] == "new"
    assert body["priority"] == 3 and body["tags"] == ["refund", "vip"]
    assert body["team"] == {"id": team.id, "name": "Billing"}
    assert body["customer"]["email"] == "buyer@example.com"
    assert body["customer"]["name"] == "Bea Buyer"
    [first] = body["messages"]
    assert first["body"] == "Please refund my order."
    assert first["author"]["type"] == "customer" and first["direction"] == "inbound"


def test_a_priority_given_at_creation_is_the_new_tickets_not_a_change(api: ApiClient) -> None:
    """An integrator's urgent ticket is created urgent: its history and the event stream say
    "created with priority 4", not "created normal, then raised" (webhook consumers and SLA
    would otherwise see a change nobody made)."""
    start = api.get("/api/v1/events").get_json()["last_id"]
    created = api.post(
        "/api/v1/tickets",
        json={
            "subject": "Site down",
            "body": "Nothing loads.",
            "customer": {"email": "o@x.com"},
            "priority": 4,
        },
    ).get_json()
    assert created["priority"] == 4
    events = api.get(f"/api/v1/events?after={start}").get_json()["events"]
    ours = [e for e in events if e["subject"]["type"] == "ticket"]
    assert [e["name"] for e in ours] == ["ticket.created"], ours
    assert ours[0]["data"]["priority"] == 4


def test_unknown_team_is_a_field_error(api: ApiClient) -> None:
    response = api.post(
        "/api/v1/tickets",
        json={"subject": "s", "body": "b", "customer": {"email": "c@example.com"}, "team": 999},
    )
    assert error_of(response, 422)["fields"] == {"team": "Unknown team."}


def test_create_with_attachments_and_download_them_with_the_token(
    app: Flask, api: ApiClient, agent: Agent
) -> None:
    created = api.post(
        "/api/v1/tickets",
        data={
            "subject": "Broken screen",
            "body": "Photo attached.",
            "customer.email": "c@example.com",
            "tags": ["hardware"],
            "files": [(io.BytesIO(b"\x89PNG fake image"), "screen.png", "image/png")],
        },
        content_type="multipart/form-data",
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    [attachment] = body["messages"][0]["attachments"]
    assert attachment["filename"] == "screen.png" and attachment["size"] == 15
    assert body["tags"] == ["hardware"]
    url = attachment["url"].removeprefix("http://localhost")
    download = api.get(url)
    assert download.status_code == 200 and download.data == b"\x89PNG fake image"
    assert "attachment" in download.headers["Content-Disposition"]
    download.close()
    error_of(ApiClient(app, None).get(url), 401)
    error_of(api.get("/api/v1/attachments/999999"), 404)


def _stream_of(recorder: stream.StreamRecorder) -> list[tuple[str, Any]]:
    return [(e.name, e.data) for e in recorder.events]


def test_patch_records_the_same_events_and_history_as_the_ticket_page(
    api: ApiClient,
    agent_client: AgentClient,
    agent: Agent,
    session: Session,
    make_ticket: MakeTicket,
) -> None:
    by_page = make_ticket(sender="a@example.com").ticket
    by_api = make_ticket(sender="b@example.com").ticket
    with stream.capture() as page_events:
        agent_client.post(f"/agent/tickets/{by_page.number}/status", {"status-status": "pending"})
        agent_client.post(f"/agent/tickets/{by_page.number}/assign", {"assign-assignee": "me"})
    with stream.capture() as api_events:
        response = api.patch(
            f"/api/v1/tickets/{by_api.number}", json={"status": "pending", "assignee": "me"}
        )
    assert response.status_code == 200
    assert response.get_json()["status"] == "pending"
    assert response.get_json()["assignee"]["id"] == agent.id
    assert {e.name for e in page_events.events} == {"ticket.updated"}
    assert [e.data for e in api_events.events] == [
        {"changes": {**e.data["changes"]}} for e in api_events.events
    ]
    page_changes = {k: v for e in page_events.events for k, v in e.data["changes"].items()}
    api_changes = {k: v for e in api_events.events for k, v in e.data["changes"].items()}
    assert api_changes == page_changes
    assert {e.actor_id for e in api_events.events} == {agent.id}

    def history(ticket_id: int) -> list[tuple[str, Any]]:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.ticket_id == ticket_id, AuditEvent.action != "ticket.created")
            .order_by(AuditEvent.id)
        )
        return sorted((r.action, r.actor_agent_id) for r in rows)

    session.expire_all()
    assert history(by_api.id) == history(by_page.id) != []


def test_patch_team_tags_priority_and_unassign(
    api: ApiClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    team = agents.create_team(session, "Support")
    session.commit()
    number = make_ticket().ticket.number
    body = api.patch(
        f"/api/v1/tickets/{number}",
        json={"team": team.id, "tags": ["b", "a"], "priority": 4, "assignee": str(agent.id)},
    ).get_json()
    assert body["team"]["id"] == team.id and body["tags"] == ["a", "b"]
    assert body["priority"] == 4 and body["assignee"]["id"] == agent.id
    body = api.patch(f"/api/v1/tickets/{number}", json={"assignee": None, "team": None}).get_json()
    assert body["assignee"] is None and body["team"] is None
    error = error_of(api.patch(f"/api/v1/tickets/{number}", json={"assignee": "4242"}), 422)
    assert error["fields"] == {"assignee": "Unknown agent."}


def test_a_reply_is_delivered_through_the_outbox_a_note_is_not(
    app: Flask, api: ApiClient, session: Session, make_ticket: MakeTicket, smtp_sink: SmtpSink
) -> None:
    ticket = make_ticket(sender="rahim@example.com", subject="Order").ticket
    note = api.post(
        f"/api/v1/tickets/{ticket.number}/messages", json={"body": "Checked.", "internal": True}
    )
    reply = api.post(f"/api/v1/tickets/{ticket.number}/messages", json={"body": "Done!"})
    assert note.status_code == reply.status_code == 201
    assert note.get_json()["internal"] is True and note.get_json()["delivery_status"] is None
    assert reply.get_json()["delivery_status"] == "queued"
    assert outbox.drain(app) == 1
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ("rahim@example.com",)
    text = message_from_bytes(mail.data, policy=policy.default)
    assert "Done!" in text.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    session.expire_all()
    sent = session.get(Message, reply.get_json()["id"])
    assert sent is not None and sent.delivery_status == DeliveryStatus.SENT
    got = api.get(f"/api/v1/tickets/{ticket.number}").get_json()
    assert [m["internal"] for m in got["messages"]] == [False, True, False]
    assert got["status"] == "open"


def test_follow_up_date_through_the_api(api: ApiClient, make_ticket: MakeTicket) -> None:
    """An integrator parks a ticket as pending until a date: the ticket shows it, the stream's
    ticket.updated carries it, and a time without an offset or a ticket that is not pending
    is refused with a clear error."""
    number = make_ticket().ticket.number
    url = f"/api/v1/tickets/{number}"
    refused = api.patch(url, json={"follow_up_at": "2099-01-05T09:00:00+06:00"})
    assert error_of(refused, 400)["message"] == "Only a pending ticket can have a follow-up date."
    start = api.get("/api/v1/events").get_json()["last_id"]
    body = api.patch(
        url, json={"status": "pending", "follow_up_at": "2099-01-05T09:00:00+06:00"}
    ).get_json()
    assert body["status"] == "pending"
    assert body["follow_up_at"].startswith("2099-01-05T03:00:00")
    assert api.get(url).get_json()["follow_up_at"] == body["follow_up_at"]
    [event] = [
        e
        for e in api.get(f"/api/v1/events?after={start}").get_json()["events"]
        if e["name"] == "ticket.updated"
    ]
    assert event["data"]["changes"]["follow_up_at"]["from"] is None
    assert event["data"]["changes"]["follow_up_at"]["to"].startswith("2099-01-05T03:00:00")
    naive = api.patch(url, json={"follow_up_at": "2099-01-05T09:00:00"})
    assert list(error_of(naive, 422)["fields"]) == ["follow_up_at"]
    assert api.patch(url, json={"follow_up_at": None}).get_json()["follow_up_at"] is None


def test_merge(api: ApiClient, make_ticket: MakeTicket) -> None:
    source = make_ticket(sender="same@example.com", text="First").ticket
    target = make_ticket(sender="same@example.com", text="Second").ticket
    merged = api.post(f"/api/v1/tickets/{source.number}/merge", json={"into": target.number})
    assert merged.status_code == 200, merged.get_data(as_text=True)
    body = merged.get_json()
    assert body["number"] == target.number
    assert {"First", "Second"} <= {m["body"] for m in body["messages"]}
    old = api.get(f"/api/v1/tickets/{source.number}").get_json()
    assert old["merged_into"] == target.number and old["status"] == "closed"
    again = api.post(f"/api/v1/tickets/{source.number}/merge", json={"into": target.number})
    assert error_of(again, 400)["code"] == "invalid"


def test_events_after_an_id_in_order(api: ApiClient, make_ticket: MakeTicket) -> None:
    start = api.get("/api/v1/events").get_json()["last_id"]
    number = make_ticket().ticket.number
    api.patch(f"/api/v1/tickets/{number}", json={"priority": 4})
    body = api.get(f"/api/v1/events?after={start}").get_json()
    names = [e["name"] for e in body["events"]]
    ids = [e["id"] for e in body["events"]]
    assert ids == sorted(ids) and ids[0] > start and body["last_id"] == ids[-1]
    assert "ticket.created" in names and names[-1] == "ticket.updated"
    assert body["events"][-1]["data"]["changes"]["priority"] == {"from": 2, "to": 4}
    # Paging by `after`: one at a time, the same events.
    walked: list[int] = []
    after = start
    while True:
        page = api.get(f"/api/v1/events?after={after}&limit=1").get_json()
        if not page["events"]:
            break
        walked.append(page["events"][0]["id"])
        after = page["last_id"]
    assert walked == ids


def test_bengali_round_trip_through_create_get_and_search(api: ApiClient) -> None:
    subject = "পাসওয়ার্ড রিসেট হচ্ছে না"
    body = "আমার অ্যাকাউন্টের পাসওয়ার্ড রিসেট লিঙ্ক কাজ করছে না।"
    created = api.post(
        "/api/v1/tickets",
        json={
            "subject": subject,
            "body": body,
            "customer": {"email": "r@example.com", "name": "রহিম"},
        },
    ).get_json()
    got = api.get(f"/api/v1/tickets/{created['number']}").get_json()
    assert got["subject"] == subject and got["messages"][0]["body"] == body
    assert got["customer"]["name"] == "রহিম"
    found = api.get("/api/v1/tickets", query_string={"q": "পাসওয়ার্ডের"}).get_json()
    assert [t["number"] for t in found["tickets"]] == [created["number"]]


def test_list_filters(
    api: ApiClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    a = make_ticket(sender="one@example.com").ticket
    b = make_ticket(sender="two@example.com", channel="portal").ticket
    api.patch(f"/api/v1/tickets/{a.number}", json={"assignee": "me", "tags": ["vip"]})

    def numbers(query: str) -> list[int]:
        response = api.get(f"/api/v1/tickets?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return [t["number"] for t in response.get_json()["tickets"]]

    assert numbers("assignee=me") == [a.number]
    assert numbers(f"assignee={agent.id}") == [a.number]
    assert numbers("assignee=none") == [b.number]
    assert numbers("tag=vip") == [a.number]
    assert numbers("channel=portal") == [b.number]
    assert numbers(f"customer={b.customer_id}") == [b.number]
    assert b.number in numbers("status=new") and numbers("status=closed") == []
    # Least recently updated first: `a` was changed last.
    assert numbers("sort=oldest") == [b.number, a.number]
    assert numbers("sort=updated") == [a.number, b.number]
    error = error_of(api.get("/api/v1/tickets?q=x&tag=vip"), 400)
    assert error["code"] == "unsupported_filter"


def test_a_team_id_that_does_not_exist_filters_to_nothing(api: ApiClient) -> None:
    assert api.get("/api/v1/tickets?team=77").get_json() == {"tickets": [], "next_cursor": None}
