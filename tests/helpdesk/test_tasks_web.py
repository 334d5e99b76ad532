"""Tasks in the agent's pages: one click from a ticket, My tasks (overdue, today, upcoming in the
agent's time zone), complete, snooze, edit, the navigation's count, the customer's and the
organization's Tasks box, a ticket's follow-up date; in English and Bengali."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, Organization, Task, TaskStatus, Ticket, TicketStatus
from helpdesk.services import tasks, tickets
from tests.conftest import AgentClient, bn


def all_tasks(session: Session) -> list[Task]:
    session.expire_all()
    return list(session.scalars(select(Task).order_by(Task.id)))


def test_one_click_on_a_ticket_adds_a_follow_up_task_for_me(
    session: Session, agent: Agent, ticket: Ticket, agent_client: AgentClient
) -> None:
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "data-tasks-box" in page and "No tasks yet." in page
    # The box's form as the page has it: the ticket and a due time filled in, no title typed.
    due = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    response = agent_client.post(
        "/agent/tasks",
        {"ticket": str(ticket.number), "title": "", "due_at": due, "remind_at": "",
         "next": f"/agent/tickets/{ticket.number}"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/agent/tickets/{ticket.number}")
    (task,) = all_tasks(session)
    assert task.title == f"Follow up: {ticket.subject}"
    assert task.ticket_id == ticket.id and task.customer_id == ticket.customer_id
    assert task.assignee_id == agent.id
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert f"Follow up: {ticket.subject}" in page
    customer_page = agent_client.get(f"/agent/customers/{ticket.customer_id}")
    assert f"Follow up: {ticket.subject}" in customer_page.get_data(as_text=True)


def test_my_tasks_groups_overdue_today_and_upcoming_in_my_time_zone(
    session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    agent.timezone = "Asia/Dhaka"
    session.commit()
    now = utcnow()
    dhaka_midnight = (
        (now + timedelta(hours=6)).replace(hour=0, minute=0, second=0, microsecond=0)
        - timedelta(hours=6)
        + timedelta(days=1)
    )  # the end of today in Dhaka, in UTC
    for title, due in [
        ("Late one", now - timedelta(minutes=5)),
        ("Later today", min(now + timedelta(seconds=30), dhaka_midnight - timedelta(seconds=1))),
        ("Next week", now + timedelta(days=7)),
    ]:
        tasks.create_task(session, agent, title=title, due_at=due, assignee=agent)
    session.commit()
    page = agent_client.get("/agent/tasks").get_data(as_text=True)
    overdue = page.index('data-tasks="overdue"')
    today = page.index('data-tasks="today"')
    upcoming = page.index('data-tasks="upcoming"')
    assert overdue < page.index("Late one") < today < page.index("Later today") < upcoming
    assert page.index("Next week") > upcoming
    assert agent_client.get("/agent/tasks/count").get_json() == {"count": 2}
    assert "data-task-count >২<" not in page  # English page, Latin digits
    assert "data-task-count" in page


def test_complete_snooze_and_edit_from_my_tasks(
    session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    task = tasks.create_task(
        session,
        agent,
        title="Send the invoice",
        due_at=utcnow() + timedelta(hours=1),
        remind_at=utcnow() + timedelta(minutes=10),
        assignee=agent,
        recurrence="weekly",
    )
    session.commit()
    before = task.remind_at
    agent_client.post(f"/agent/tasks/{task.id}/snooze", {"for": "1h"})
    session.expire_all()
    assert task.remind_at is not None and before is not None and task.remind_at > before
    assert task.next_fire_at == task.remind_at

    edit = agent_client.get(f"/agent/tasks/{task.id}/edit").get_data(as_text=True)
    assert "Send the invoice" in edit
    bad = agent_client.post(
        f"/agent/tasks/{task.id}/edit",
        {"title": "Send the invoice", "due_at": "tomorrow", "recurrence": "weekly"},
    )
    assert bad.status_code == 400
    assert "The due time is not a valid date and time." in bad.get_data(as_text=True)

    response = agent_client.post(f"/agent/tasks/{task.id}/complete", {})
    assert response.status_code == 302
    done, following = all_tasks(session)
    assert done.status is TaskStatus.DONE and following.status is TaskStatus.OPEN
    assert following.due_at == done.due_at + timedelta(days=7)


def test_a_task_without_a_title_is_refused_with_a_message(agent_client: AgentClient) -> None:
    response = agent_client.post(
        "/agent/tasks", {"title": " ", "due_at": "2030-01-01T09:00"}, follow_redirects=True
    )
    assert "A task needs a title." in response.get_data(as_text=True)


def test_the_pages_in_bengali(session: Session, agent: Agent, agent_client: AgentClient) -> None:
    agent.language = "bn"
    session.commit()
    tasks.create_task(
        session, agent, title="রহিমকে ফোন", due_at=utcnow() - timedelta(hours=1), assignee=agent
    )
    session.commit()
    page = agent_client.get("/agent/tasks").get_data(as_text=True)
    assert bn("My tasks") in page and bn("Overdue") in page and bn("Snooze 1 hour") in page
    assert "রহিমকে ফোন" in page
    assert ">১</span>" in page  # the navigation's count in Bengali digits


def test_the_organization_page_has_its_tasks(
    session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    org = Organization(name="Acme")
    session.add(org)
    session.flush()
    tasks.create_task(
        session,
        agent,
        title="Renew Acme's contract",
        due_at=utcnow() + timedelta(days=3),
        assignee=agent,
        organization=org,
    )
    session.commit()
    page = agent_client.get(f"/agent/organizations/{org.id}").get_data(as_text=True)
    assert "Renew Acme&#39;s contract" in page or "Renew Acme's contract" in page


def test_a_pending_ticket_gets_a_follow_up_date_from_its_page(
    session: Session, agent: Agent, ticket: Ticket, agent_client: AgentClient
) -> None:
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "data-follow-up" not in page  # only for a pending ticket
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    session.commit()
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "data-follow-up" in page
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    agent_client.post(f"/agent/tickets/{ticket.number}/follow-up", {"follow_up_on": day})
    session.expire_all()
    assert ticket.follow_up_at is not None
    assert ticket.follow_up_at.date().isoformat() == day
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "Reopens on" in page
    past: dict[str, Any] = {"follow_up_on": "2020-01-01"}
    response = agent_client.post(
        f"/agent/tickets/{ticket.number}/follow-up", past, follow_redirects=True
    )
    assert "Choose a follow-up date in the future." in response.get_data(as_text=True)
