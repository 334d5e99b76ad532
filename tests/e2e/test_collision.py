"""Collision detection in a real browser: two agents on one ticket see each other viewing and
typing, and the one who sends second is warned and must confirm."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.services.inbound import receive
from tests.e2e.conftest import LiveServer, sign_in, wait_socket

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]
NUSRAT = "নুসরাত জাহান"  # the demo's Bengali-speaking agent (her pages are in Bengali)


def _new_ticket(live_server: LiveServer, subject: str) -> int:
    app = create_app(
        {
            "INSTANCE_PATH": str(live_server.instance),
            "MESSAGE_QUEUE": live_server.env["HELPDESK_MESSAGE_QUEUE"],
            "WORKER_ENABLED": False,
        }
    )
    engine = db.engine(app)
    with app.app_context(), db.transaction(app) as session:
        msg = InboundMessage("email", "collide@example.com", "Where is my parcel?", subject=subject)
        number = receive(session, msg).ticket.number
    engine.dispose()
    return number


def _viewers(page: Page) -> Locator:
    return page.locator("[data-viewer-list] .viewer")


def test_two_agents_see_each_other_and_the_second_sender_must_confirm(
    new_context: NewContext, live_server: LiveServer
) -> None:
    number = _new_ticket(live_server, "Collision course")
    url = f"/agent/tickets/{number}"

    tanvir = new_context().new_page()
    sign_in(tanvir)  # Tanvir Hasan, English
    tanvir.goto(url)
    wait_socket(tanvir)
    expect(tanvir.locator("[data-viewers]")).to_be_hidden()  # alone: nothing shown

    nusrat = new_context(locale="bn-BD").new_page()
    sign_in(nusrat, "nusrat@example.com")
    nusrat.goto(url)
    wait_socket(nusrat)

    # Each sees the other viewing; nobody sees themselves.
    expect(_viewers(tanvir)).to_have_text([f"{NUSRAT} (viewing)"])
    expect(_viewers(nusrat)).to_have_count(1)
    expect(_viewers(nusrat)).to_contain_text("Tanvir Hasan")

    # The same agent in a second tab is still one entry; closing that tab changes nothing.
    second_tab = nusrat.context.new_page()
    second_tab.goto(url)
    wait_socket(second_tab)
    expect(_viewers(second_tab)).to_contain_text("Tanvir Hasan")
    second_tab.close()
    expect(_viewers(tanvir)).to_have_text([f"{NUSRAT} (viewing)"])

    # Typing is seen live, as a reply or a note, and stops by itself after a pause.
    nusrat.locator("#reply-body").press_sequentially("আপনার পার্সেল")
    expect(_viewers(tanvir)).to_have_text([f"{NUSRAT} is typing a reply…"])
    expect(_viewers(tanvir)).to_have_text([f"{NUSRAT} (viewing)"])
    tanvir.locator("#reply-body").press_sequentially("Your parcel left our warehouse")
    expect(nusrat.locator("[data-viewer-list] .viewer.typing")).to_contain_text("Tanvir Hasan")
    nusrat.locator("[data-tab=note]").click()
    nusrat.locator("#note-body").press_sequentially("দেখছি")
    expect(_viewers(tanvir)).to_have_text([f"{NUSRAT} is writing a note…"])
    nusrat.locator("[data-tab=reply]").click()

    # Nusrat sends first. Tanvir, still writing, is told at once and sees her reply.
    nusrat.locator("#reply-body").fill("আপনার পার্সেল আজ পৌঁছাবে।")
    nusrat.locator(".reply-form button[type=submit]").click()
    expect(nusrat.locator(".timeline")).to_contain_text("আপনার পার্সেল আজ পৌঁছাবে।")
    warning = tanvir.locator("[data-collision]")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(
        f"{NUSRAT} replied while you were writing — review before sending."
    )
    expect(tanvir.locator(".timeline .msg-new")).to_contain_text("আপনার পার্সেল আজ পৌঁছাবে।")
    expect(tanvir.locator("#reply-body")).to_have_value("Your parcel left our warehouse")

    # Sending now is stopped until Tanvir confirms; nothing typed is lost.
    tanvir.locator(".reply-form button[type=submit]").click()
    confirm = tanvir.get_by_role("button", name="Send anyway")
    expect(confirm).to_be_visible()
    expect(confirm).to_be_focused()
    expect(tanvir.locator("#reply-body")).to_have_value("Your parcel left our warehouse")
    expect(tanvir.locator(".timeline .msg")).to_have_count(2)  # not sent
    confirm.click()
    expect(tanvir.locator(".flash-success")).to_have_text("Reply queued for delivery.")
    expect(tanvir.locator(".timeline .msg").last).to_contain_text("Your parcel left our warehouse")

    # Nusrat, with nothing typed, just sees his reply arrive, with no warning.
    expect(nusrat.locator(".timeline")).to_contain_text("Your parcel left our warehouse")
    expect(nusrat.locator("[data-collision]")).to_be_hidden()

    # Closing the tab (no leave_ticket): the other page drops her.
    expect(_viewers(tanvir)).to_have_count(1)
    nusrat.close()
    expect(tanvir.locator("[data-viewers]")).to_be_hidden()


def test_a_stale_send_without_the_live_warning_is_stopped_by_the_server(
    new_context: NewContext, live_server: LiveServer
) -> None:
    """The page missed the news (its socket was down): the server's version check catches it,
    keeps the text, and "Send anyway" sends it."""
    number = _new_ticket(live_server, "Late news")
    url = f"/agent/tickets/{number}"
    tanvir = new_context().new_page()
    sign_in(tanvir)
    tanvir.goto(url)
    wait_socket(tanvir)
    tanvir.evaluate("window.helpdeskSocket.disconnect()")
    tanvir.locator("#reply-body").fill("Checking with the courier now.")

    ayesha = new_context().new_page()
    sign_in(ayesha, "admin@example.com")
    ayesha.goto(url)
    ayesha.locator("#reply-body").fill("It was delivered this morning.")
    ayesha.locator(".reply-form button[type=submit]").click()
    expect(ayesha.locator(".flash-success")).to_be_visible()

    tanvir.locator(".reply-form button[type=submit]").click()
    expect(tanvir.locator(".reply-form [role=alert]").first).to_contain_text(
        "Another reply arrived while you were writing"
    )
    expect(tanvir.locator(".timeline")).to_contain_text("It was delivered this morning.")
    expect(tanvir.locator("#reply-body")).to_have_value("Checking with the courier now.")
    tanvir.get_by_role("button", name="Send anyway").click()
    expect(tanvir.locator(".flash-success")).to_have_text("Reply queued for delivery.")


def test_a_draft_survives_changing_the_ticket_from_the_same_page(
    new_context: NewContext, live_server: LiveServer
) -> None:
    number = _new_ticket(live_server, "Draft keeper")
    page = new_context().new_page()
    sign_in(page)
    page.goto(f"/agent/tickets/{number}")
    wait_socket(page)
    page.locator("#reply-body").press_sequentially("আপনার রিফান্ড")
    page.select_option("#status-status", "pending")  # a full-page post
    expect(page.locator(".ticket-head .status")).to_have_text("Pending")
    expect(page.locator("#reply-body")).to_have_value("আপনার রিফান্ড")
    page.locator(".reply-form button[type=submit]").click()
    expect(page.locator(".flash-success")).to_have_text("Reply queued for delivery.")
    page.reload()
    expect(page.locator("#reply-body")).to_have_value("")  # sent drafts are forgotten
