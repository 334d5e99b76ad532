"""The portal in Chromium: suggestions while typing, voting, and magic-link ticket tracking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.conftest import LiveServer, sign_in
from tests.e2e.portal_server import portal_server  # noqa: F401  (fixture)
from tests.servers import SmtpSink

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(browser: Browser, portal_server: LiveServer) -> Iterator[object]:  # noqa: F811
    made: list[BrowserContext] = []

    def make(locale: str = "en-US") -> BrowserContext:
        c = browser.new_context(base_url=portal_server.url, locale=locale)
        c.set_default_timeout(15_000)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_suggestion_appears_while_typing_and_customer_votes_helpful(ctx: object) -> None:
    page = ctx().new_page()  # type: ignore[operator]
    page.goto("/portal/contact")
    page.fill("#email", "typist@example.com")
    page.type("#subject", "forgot my password", delay=20)
    suggestion = page.locator("#suggestion-list a.suggestion").first
    expect(suggestion).to_be_visible()
    expect(suggestion).to_contain_text("password")
    suggestion.click()
    expect(page.locator("h1")).to_contain_text("assword")
    page.get_by_role("button", name="Yes").click()
    expect(page.locator(".vote-thanks")).to_be_visible()
    # Back on the form, what the customer typed is still there.
    page.goto("/portal/contact")
    expect(page.locator("#subject")).to_have_value("forgot my password")


def test_the_forms_custom_answers_survive_reading_a_suggestion(ctx: object) -> None:
    """The demo's "Product" dropdown on the contact form is kept in the draft like the text."""
    page = ctx().new_page()  # type: ignore[operator]
    page.goto("/portal/contact")
    product = page.locator('select[name="custom.product"]')
    product.select_option("phone")
    page.type("#subject", "forgot my password", delay=20)
    suggestion = page.locator("#suggestion-list a.suggestion").first
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(page.locator("h1")).to_contain_text("assword")
    page.goto("/portal/contact")
    expect(page.locator("#subject")).to_have_value("forgot my password")
    expect(product).to_have_value("phone")


def test_customer_submits_gets_magic_link_replies_and_agent_sees_it(
    ctx: object, smtp_sink: SmtpSink
) -> None:
    customer = ctx(locale="bn-BD").new_page()  # type: ignore[operator]
    customer.goto("/portal/contact")
    customer.fill("#name", "রহিম")
    customer.fill("#email", "rahim.e2e@example.com")
    customer.fill("#subject", "অর্ডার এখনও আসেনি")
    customer.fill("#description", "তিন দিন হয়ে গেল।")
    customer.locator("#contact-form button[type=submit]").click()
    expect(customer.locator("[data-submitted]")).to_be_visible()

    mail = smtp_sink.wait_for(1, timeout=20)[0]
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert mail.rcpt_tos == ("rahim.e2e@example.com",)
    body = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"(http://127\.0\.0\.1:\d+/portal/m/\S+)", body)
    assert link, body

    customer.goto(link.group(1))
    customer.locator("#magic-continue").click()
    expect(customer.locator("h1")).to_contain_text("অর্ডার এখনও আসেনি")
    customer.fill("#body", "আজ কি আসবে? ধন্যবাদ")
    customer.locator("form.portal-form button[type=submit]").click()
    expect(customer.locator(".timeline")).to_contain_text("আজ কি আসবে?")

    agent = ctx().new_page()  # type: ignore[operator]
    sign_in(agent)
    row = agent.locator("tr", has_text="অর্ডার এখনও আসেনি").first
    expect(row).to_be_visible()
    row.locator("a").first.click()
    expect(agent.locator(".timeline")).to_contain_text("আজ কি আসবে? ধন্যবাদ")
    expect(agent.locator("[data-kb-suggestions]")).to_be_visible()
