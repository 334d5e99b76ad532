"""The README's tour step: "Write @Ayesha in an internal note and Ayesha gets a notification",
typed into the note box with its autocomplete, and read by Ayesha, in a real browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import sign_in, wait_socket

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


def test_at_ayesha_in_a_note_notifies_ayesha(new_context: NewContext) -> None:
    ayesha = new_context().new_page()
    sign_in(ayesha, "admin@example.com")  # Ayesha Rahman in the demo data
    wait_socket(ayesha)
    badge = ayesha.locator("[data-notification-count]")
    before = int(badge.inner_text() or 0) if badge.is_visible() else 0

    page = new_context().new_page()
    sign_in(page)  # Tanvir Hasan
    page.locator("tbody tr[data-ticket-id] td.num a").first.click()
    wait_socket(page)
    number = page.locator(".crumbs").inner_text().split("#")[-1].strip()
    page.locator("[data-tab=note]").click()
    box = page.locator("#note-body")
    box.click()
    box.press_sequentially("Could you call the customer, @Ay")
    option = page.locator("#mention-results li[role=option]")
    expect(option).to_have_count(1)
    expect(option).to_contain_text("Ayesha Rahman")
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("Enter")  # inserts the name; does not start a new line
    expect(box).to_have_value("Could you call the customer, @Ayesha Rahman ")
    expect(page.locator("#mention-results")).to_be_hidden()
    box.press_sequentially("and @Nob please?")
    expect(page.locator("#mention-results")).to_be_hidden()  # nobody starts with "Nob"
    page.locator(".note-form button[type=submit]").click()
    expect(page.locator(".flashes .flash-info")).to_have_text("Notified: Ayesha Rahman.")
    expect(page.locator(".flashes .flash-warning")).to_have_text(
        "No agent is called @Nob: nobody was notified for it."
    )

    # Ayesha sees it live, and in her list.
    expect(badge).to_have_text(str(before + 1))
    ayesha.locator("[data-notifications]").click()
    expect(ayesha.locator("main")).to_contain_text(f"Tanvir Hasan mentioned you on #{number}")
