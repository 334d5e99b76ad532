"""The satisfaction survey in Chromium, in Bengali: a customer's ticket is resolved by an agent,
the survey mail arrives (a real SMTP sink), its "good" link opens the rating page, whose own
POST records the rating; the customer adds a comment; the agent's ticket page shows both."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.conftest import bn
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


def test_the_mails_link_rates_and_the_comment_follows_in_bengali(
    ctx: object, smtp_sink: SmtpSink
) -> None:
    customer = ctx(locale="bn-BD").new_page()  # type: ignore[operator]
    customer.goto("/portal/contact")
    customer.fill("#name", "করিম")
    customer.fill("#email", "karim.rating@example.com")
    customer.fill("#subject", "ফেরতের টাকা পাইনি")
    customer.fill("#description", "এক সপ্তাহ হয়ে গেল।")
    customer.locator("#contact-form button[type=submit]").click()
    expect(customer.locator("[data-submitted]")).to_be_visible()
    smtp_sink.wait_for(1, timeout=20)  # the confirmation

    agent = ctx().new_page()  # type: ignore[operator]
    sign_in(agent)
    agent.locator("tr", has_text="ফেরতের টাকা পাইনি").first.locator("a").first.click()
    expect(agent.locator("h1")).to_have_text("ফেরতের টাকা পাইনি")
    agent.wait_for_load_state("load")
    agent.select_option("select[name=status-status]", "resolved")
    expect(agent.locator("select[name=status-status]")).to_have_value("resolved")

    mail = None
    for count in range(2, 30):  # the demo's other customers get mail too
        for got in smtp_sink.wait_for(count, timeout=30):
            parsed = message_from_bytes(got.data, policy=policy.default)
            text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            if got.rcpt_tos == ("karim.rating@example.com",) and "/portal/rate/" in text:
                mail = parsed
        if mail is not None:
            break
    assert mail is not None, [
        (m.rcpt_tos, message_from_bytes(m.data, policy=policy.default)["Subject"])
        for m in smtp_sink.wait_for(1)
    ]
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"(http://127\.0\.0\.1:\d+/portal/rate/\S+\?score=good)", body)
    assert link, body

    customer.goto(link.group(1))
    # The page sent the choice by itself: the thank-you, with the comment box.
    expect(customer.locator("#rating-thanks")).to_have_text(
        bn("Thank you! Your rating was recorded.")
    )
    customer.fill("#comment", "দ্রুত সমাধান, ধন্যবাদ")
    customer.locator("#rate-submit").click()
    expect(customer.locator(".flashes .flash-success")).to_have_text(
        bn("Thank you! Your comment was saved.")
    )

    agent.reload()
    box = agent.locator("[data-satisfaction]")
    expect(box).to_contain_text("👍 Good")
    expect(box).to_contain_text("দ্রুত সমাধান, ধন্যবাদ")
