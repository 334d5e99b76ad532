"""After a form post the page keeps its layout: the message is a row above it, not a grid cell.

Every post on the queue and ticket pages ends on a page with a flash message. It used to become
the first cell of the page's grid, squeezing the conversation into the narrow column and pushing
the properties panel below it. Checked on the rendered page's boxes, in English and Bengali.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.conftest import bn
from tests.e2e.conftest import sign_in, wait_socket

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]
WIDTH, HEIGHT = 1280, 900


def box(locator: Locator) -> dict[str, float]:
    """The element's box in page coordinates (unaffected by where the page is scrolled)."""
    expect(locator).to_be_visible()
    found: dict[str, float] = locator.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }"
    )
    return found


def assert_side_by_side(page: Page, main: str, side: str, main_is_wider: bool) -> None:
    """``side`` sits beside ``main`` (same top, to its right or left), under the flash message."""
    expect(page.locator("main")).to_have_css("display", "grid")  # the stylesheet is applied
    flash, a, b = box(page.locator(".flashes")), box(page.locator(main)), box(page.locator(side))
    # The message spans the page above both columns.
    assert flash["y"] + flash["height"] <= min(a["y"], b["y"]) + 1, (flash, a, b)
    assert flash["width"] >= a["width"] + b["width"]
    # The two columns start on the same line, next to each other.
    assert abs(a["y"] - b["y"]) < 2, (a, b)
    assert a["x"] + a["width"] <= b["x"] + 1 or b["x"] + b["width"] <= a["x"] + 1, (a, b)
    if main_is_wider:
        assert a["width"] > 2 * b["width"], (a, b)


@pytest.mark.parametrize("locale", ["en-US", "bn"])
def test_ticket_page_after_a_note_and_a_reply(new_context: NewContext, locale: str) -> None:
    page = new_context(locale=locale).new_page()
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    # An agent's own language wins over the browser's: Nusrat prefers Bengali.
    sign_in(page, "agent@example.com" if locale == "en-US" else "nusrat@example.com")
    page.locator("tbody tr[data-ticket-id] td.num a").first.click()
    wait_socket(page)  # the page's scripts (the composer's tabs) have run

    page.locator("[data-tab=note]").click()
    page.fill("#note-body", "Checked the order; waiting for the courier.")
    page.locator(".note-form button[type=submit]").click()
    expected = "Note added." if locale == "en-US" else bn("Note added.")
    expect(page.locator(".flash-success")).to_have_text(expected)
    assert_side_by_side(page, ".ticket-main", ".ticket-side", main_is_wider=True)

    page.fill("#reply-body", "Your parcel leaves the warehouse today.")
    page.locator(".reply-form button[type=submit].primary").click()
    queued = "Reply queued for delivery."
    expect(page.locator(".flash-success")).to_have_text(queued if locale == "en-US" else bn(queued))
    assert_side_by_side(page, ".ticket-main", ".ticket-side", main_is_wider=True)


def test_queue_after_a_bulk_action_and_a_refused_one(new_context: NewContext) -> None:
    page = new_context().new_page()
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    sign_in(page)
    page.goto("/agent/queue?view=all")
    page.locator("tbody tr[data-ticket-id] td.sel input").first.check()
    page.select_option("#bulk-form select[name=status]", "open")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".flash-success")).to_have_text("1 ticket updated.")
    assert_side_by_side(page, "aside.sidebar", "section.queue", main_is_wider=False)
    queue, views = box(page.locator("section.queue")), box(page.locator("aside.sidebar"))
    assert queue["width"] > 3 * views["width"]

    # An error message (nothing chosen to change) keeps the layout as well.
    page.locator("tbody tr[data-ticket-id] td.sel input").first.check()
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".flash-error")).to_have_text("Choose what to change.")
    assert_side_by_side(page, "aside.sidebar", "section.queue", main_is_wider=False)


def test_a_chat_ticket_without_a_chat_shows_its_timeline_not_an_error(
    new_context: NewContext,
) -> None:
    """The demo's chat tickets (like imported ones) have no live chat behind them: the ticket
    page showed "Chat not found." in a panel stuck on "Connecting…"."""
    page = new_context().new_page()
    sign_in(page)
    page.goto("/agent/queue?view=all&channel=chat")
    page.locator("tbody tr[data-ticket-id] td.num a").first.click()
    wait_socket(page)
    expect(page.locator("li.msg").first).to_be_visible()
    expect(page.locator("[data-chat-panel]")).to_be_hidden()
    expect(page.locator("[data-chat-error]")).to_be_hidden()
