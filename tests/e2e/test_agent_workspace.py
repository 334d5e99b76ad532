"""The agent workspace in a real browser: keyboard shortcuts, bulk actions seen live by others."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.services import tags
from helpdesk.services.inbound import receive
from tests.e2e.conftest import LiveServer, sign_in, wait_socket

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


def test_keyboard_shortcuts(new_context: NewContext) -> None:
    page = new_context().new_page()
    sign_in(page)
    wait_socket(page)  # the page's scripts (shortcuts included) have run
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()
    page.keyboard.press("j")
    page.keyboard.press("j")
    second = page.locator("tbody tr.kbd-current td.num a")
    expect(second).to_have_count(1)
    number = second.inner_text()
    page.keyboard.press("o")
    expect(page.locator(".crumbs")).to_contain_text(number)
    wait_socket(page)
    page.keyboard.press("r")
    expect(page.locator("#reply-body")).to_be_focused()
    page.locator("#reply-body").press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("n")
    expect(page.locator("#note-body")).to_be_focused()


def test_bulk_assign_of_20_tickets_updates_both_queues_live(
    new_context: NewContext, live_server: LiveServer
) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(live_server.instance),
            "MESSAGE_QUEUE": live_server.env["HELPDESK_MESSAGE_QUEUE"],
            "WORKER_ENABLED": False,
        }
    )
    with app.app_context(), db.transaction(app) as session:
        for i in range(20):
            msg = InboundMessage("email", f"bulk{i}@example.com", "help", subject=f"Bulk {i:02d}")
            t = receive(session, msg).ticket
            tags.set_tags(session, t, ["bulk-e2e"], None)
    db.engine(app).dispose()

    url = "/agent/queue?view=all&tag=bulk-e2e"
    watcher = new_context().new_page()
    sign_in(watcher)
    watcher.goto(url)
    wait_socket(watcher)
    expect(watcher.locator("tbody tr[data-ticket-id]")).to_have_count(20)

    actor = new_context().new_page()
    sign_in(actor, "admin@example.com")
    actor.goto(url)
    expect(actor.locator("#bulk-form")).to_be_hidden()  # nothing selected yet
    expect(actor.locator("[data-notification-count]")).to_be_hidden()  # no notifications
    actor.locator("[data-select-all]").check()
    expect(actor.locator("[data-bulk-count]")).to_have_text("20")
    actor.select_option("#bulk-form select[name=assignee]", "me")
    actor.get_by_role("button", name="Apply to selected").click()
    expect(actor.locator(".flash-success")).to_have_text("20 tickets updated.")

    # The other agent's queue shows the new assignee on every row without a reload.
    expect(watcher.locator("tbody tr[data-ticket-id]", has_text="Ayesha Rahman")).to_have_count(20)
