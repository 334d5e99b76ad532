"""Admin -> Rules in a real browser, the README's tour step: the admin adds condition and action
rows with the page's script (a mail action shows its own boxes), previews the tickets the
conditions match, saves, and the worker of the running server acts on a new ticket, whose
history names the rule; then the rule is deleted after confirming."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, expect

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.services.inbound import receive
from tests.e2e.conftest import LiveServer, sign_in

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


def _open_ticket(live_server: LiveServer, subject: str) -> int:
    app: Flask = create_app({"INSTANCE_PATH": str(live_server.instance), "WORKER_ENABLED": False})
    try:
        with app.app_context(), db.transaction(app) as session:
            return receive(
                session,
                InboundMessage(
                    channel_kind="email",
                    sender_address="refunds@example.com",
                    subject=subject,
                    text="Please refund my order.",
                ),
            ).ticket.number
    finally:
        db.engine(app).dispose()


def test_an_admin_builds_previews_and_saves_a_trigger_that_the_worker_runs(
    new_context: NewContext, live_server: LiveServer
) -> None:
    token = uuid.uuid4().hex[:8]
    earlier = _open_ticket(live_server, f"Old refund {token}")
    page = new_context().new_page()
    sign_in(page, "admin@example.com")
    page.goto("/admin/rules/new")
    page.fill("#name", f"Refunds {token}")
    expect(page.locator("[data-after-hours]")).to_be_hidden()  # a trigger: no hours box

    conditions = page.locator("[data-conditions]")
    conditions.get_by_role("button", name="Add condition").click()
    row = conditions.locator("[data-rows] .condition-row").last
    row.locator("select[name='c.field']").select_option("subject")
    row.locator("select[name='c.op']").select_option("contains")
    row.locator("input[name='c.value']").fill(token)

    actions = page.locator("[data-actions]")
    actions.get_by_role("button", name="Add action").click()
    first = actions.locator("[data-rows] [data-action-row]").last
    first.locator("select[name='a.type']").select_option("set_priority")
    first.locator("input[name='a.value']").fill("urgent")
    expect(first.locator("[data-action-mail]")).to_be_hidden()
    actions.get_by_role("button", name="Add action").click()
    mail = actions.locator("[data-rows] [data-action-row]").last
    mail.locator("select[name='a.type']").select_option("send_email")
    expect(mail.locator("[data-action-mail]")).to_be_visible()
    expect(mail.locator("input[name='a.value']")).to_be_hidden()
    mail.locator("input[name='a.subject_en']").fill("We got your refund request")
    mail.locator("textarea[name='a.body_en']").fill("About {{ ticket.number }}.")
    # A third row, removed again.
    actions.get_by_role("button", name="Add action").click()
    actions.locator("[data-rows] [data-action-row]").last.get_by_role(
        "button", name="Remove"
    ).click()
    expect(actions.locator("[data-rows] [data-action-row]")).to_have_count(2)

    page.get_by_role("button", name="Preview").click()
    preview = page.locator("[data-preview]")
    expect(preview).to_contain_text(f"Old refund {token}")
    expect(preview).to_contain_text("1 of the")
    # The page came back with everything typed.
    expect(page.locator("input[name='c.value']").first).to_have_value(token)
    expect(page.locator("[data-action-mail]").last).to_be_visible()

    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url(re.compile(r"/admin/rules$"))
    rule_row = page.locator("[data-rule-list] tr", has_text=f"Refunds {token}")
    expect(rule_row.locator("[data-run-count]")).to_have_text("0")

    # The running server's worker runs the trigger on a new ticket.
    number = _open_ticket(live_server, f"Refund please {token}")
    assert number != earlier
    # The worker is another process: the ticket page is opened again until its history shows
    # the rule's change (each look waits on the page, not on a clock).
    by_rule = page.locator("section.history li", has_text=f"by rule Refunds {token}")
    for _attempt in range(30):
        page.goto(f"/agent/tickets/{number}")
        try:
            expect(by_rule).to_have_count(1, timeout=1_000)
            break
        except AssertionError:
            continue
    expect(by_rule).to_have_count(1)
    page.goto("/admin/rules")
    expect(rule_row.locator("[data-run-count]")).to_have_text("1")

    rule_row.get_by_role("link", name=f"Refunds {token}").click()
    page.get_by_role("link", name="Delete rule").click()
    page.get_by_role("button", name="Delete rule").click()
    page.wait_for_url(re.compile(r"/admin/rules$"))
    expect(page.locator("[data-rule-list] tr", has_text=f"Refunds {token}")).to_have_count(0)
