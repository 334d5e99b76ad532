"""Automatic assignment in a real browser: an admin turns on round robin for a team, two agents
go online, and new tickets of the team land in their "My tickets" queues live, taking turns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.models import Team
from helpdesk.services import tickets
from helpdesk.services.inbound import receive
from tests.e2e.conftest import LiveServer, sign_in, wait_socket

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]
TEAM = "Round robin e2e"


def _go_online(page: Page) -> None:
    page.goto("/agent/queue?view=mine")
    wait_socket(page)
    page.select_option("select[data-presence]", "online")
    # Acknowledged by the server (the page remembers the choice only then).
    expect(page.locator("select[data-presence][data-saved=online]")).to_be_attached()


def test_round_robin_hands_new_tickets_to_online_agents_in_turn(
    new_context: NewContext, live_server: LiveServer
) -> None:
    for email, name in [("rr1@example.com", "Rumana One"), ("rr2@example.com", "Rafiq Two")]:
        live_server.helpdesk("agent", "add", email, "--name", name, "--password", "demo-password")
    live_server.helpdesk(
        "team", "add", TEAM, "--member", "rr1@example.com", "--member", "rr2@example.com"
    )

    admin = new_context().new_page()
    sign_in(admin, "admin@example.com")
    admin.goto("/admin/teams")
    admin.get_by_role("link", name=TEAM).click()
    admin.select_option("#mode", "round_robin")
    admin.fill("#max_open", "5")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator(".flash-success")).to_have_text(f"Team {TEAM} saved.")
    expect(admin.locator("tr", has_text=TEAM)).to_contain_text("Round robin")

    first, second = new_context().new_page(), new_context().new_page()
    sign_in(first, "rr1@example.com")
    sign_in(second, "rr2@example.com")
    _go_online(first)
    _go_online(second)

    # Mail for the team arrives in another process (events reach the browsers through Redis).
    app = create_app(
        {
            "INSTANCE_PATH": str(live_server.instance),
            "MESSAGE_QUEUE": live_server.env["HELPDESK_MESSAGE_QUEUE"],
            "WORKER_ENABLED": False,
        }
    )
    with app.app_context():
        for i in range(4):
            with db.transaction(app) as session:
                msg = InboundMessage("email", f"rr{i}@example.com", "help", subject=f"RR {i}")
                ticket = receive(session, msg).ticket
                team = session.scalars(select(Team).where(Team.name == TEAM)).one()
                tickets.set_team(session, ticket, team, None)
    db.engine(app).dispose()

    rows = "tbody tr[data-ticket-id]"
    expect(first.locator(rows, has_text="RR 0")).to_have_count(1)
    expect(first.locator(rows, has_text="RR 2")).to_have_count(1)
    expect(second.locator(rows, has_text="RR 1")).to_have_count(1)
    expect(second.locator(rows, has_text="RR 3")).to_have_count(1)
    expect(first.locator(rows, has_text="RR 1")).to_have_count(0)

    first.locator(rows, has_text="RR 0").locator("td.num a").click()
    expect(first.locator(".history")).to_contain_text(
        "assigned automatically to Rumana One (round robin)"
    )
