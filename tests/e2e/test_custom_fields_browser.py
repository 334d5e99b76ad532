"""Custom fields in a real browser, the README's tour step: resolving a ticket is held up by a
required dropdown, the agent fills it in the sidebar, resolves, and finds the ticket again
through the queue's filter on that field."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, expect

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.models import CustomField
from helpdesk.services import custom_fields
from helpdesk.services.inbound import receive
from tests.e2e.conftest import LiveServer, sign_in

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


@dataclass
class Setup:
    key: str
    number: int
    subject: str


@pytest.fixture
def required_plan(live_server: LiveServer) -> Iterator[Setup]:
    """A required "Plan" dropdown and a fresh ticket on the shared demo server; the field is
    deleted afterwards, so the browser tests that follow resolve tickets unhindered."""
    app: Flask = create_app({"INSTANCE_PATH": str(live_server.instance), "WORKER_ENABLED": False})
    key = f"plan_{uuid.uuid4().hex[:8]}"
    subject = f"Upgrade our account {key[-8:]}"
    with app.app_context():
        with db.transaction(app) as session:
            field = custom_fields.define_field(
                session,
                None,
                object_type="ticket",
                key=key,
                type="dropdown",
                label_en="Plan",
                label_bn="প্ল্যান",
                options=["free | Free | ফ্রি", "gold | Gold | গোল্ড"],
                required_on_resolve=True,
            )
            field_id = field.id
            number = receive(
                session,
                InboundMessage(
                    channel_kind="email",
                    sender_address="upgrade@example.com",
                    sender_name="Upgrade Customer",
                    subject=subject,
                    text="Please move us to the gold plan.",
                ),
            ).ticket.number
        try:
            yield Setup(key, number, subject)
        finally:
            with db.transaction(app) as session:
                found = session.get(CustomField, field_id)
                if found is not None:
                    custom_fields.delete_field(session, found, None)
    db.engine(app).dispose()


def test_a_required_field_filled_after_a_blocked_resolve(
    new_context: NewContext, required_plan: Setup
) -> None:
    key, number, subject = required_plan.key, required_plan.number, required_plan.subject
    page = new_context().new_page()
    sign_in(page)
    page.goto(f"/agent/tickets/{number}")
    expect(page.locator("h1")).to_have_text(subject)
    box = page.locator("[data-custom-fields]")
    expect(box.locator(f'[data-cf-value="{key}"]')).to_have_text("—")
    expect(box).to_contain_text("Required to resolve")

    # Resolving with the plan empty: held up, the field named, its form opened.
    page.wait_for_load_state("load")  # the status select submits from base.js
    page.select_option("select[name=status-status]", "resolved")
    expect(page.locator(".flashes")).to_contain_text(
        "Plan must be filled in before the ticket is resolved."
    )
    expect(page.locator(".ticket-head .status")).not_to_have_text("Resolved")
    select = page.locator(f"#cf-input-{key}")
    expect(select).to_be_visible()

    # Filled in from the sidebar, the ticket resolves.
    select.select_option("gold")
    box.get_by_role("button", name="Save fields").click()
    expect(page.locator(".flashes")).to_contain_text("Fields saved.")
    expect(box.locator(f'[data-cf-value="{key}"]')).to_have_text("Gold")
    page.wait_for_load_state("load")
    page.select_option("select[name=status-status]", "resolved")
    expect(page.locator(".ticket-head .status")).to_have_text("Resolved")

    # The queue's filter bar offers the field: the resolved view filtered by Gold finds it.
    page.goto("/agent/queue?view=resolved")
    page.select_option(f'select[name="cf.{key}"]', "gold")
    page.locator("form.filters button[type=submit]").click()
    chip = page.locator(f'[data-cf-chip="{key}"]')
    expect(chip).to_contain_text("Plan: Gold")
    expect(page.locator("tbody tr[data-ticket-id]", has_text=subject)).to_be_visible()
    assert f"cf.{key}=gold" in page.url
    # Removing the chip lists the view without the filter.
    chip.get_by_role("link").click()
    expect(page.locator(f'[data-cf-chip="{key}"]')).to_have_count(0)
    assert f"cf.{key}" not in page.url
    # Leave this agent's remembered queue as it was for the other browser tests.
    page.goto("/agent/queue?view=open")
    page.wait_for_load_state("networkidle")
