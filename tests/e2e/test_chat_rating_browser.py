"""The rating at a chat's end in Chromium, in Bengali: the widget on a customer's site, the
agent ends the chat in the agent UI, the widget offers good/bad; one click records it, the
comment follows."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import SatisfactionRating
from tests.channels.chat.servers import ChatSite, ServerProcess
from tests.conftest import bn
from tests.e2e.test_chat_browser import _agent_page, _customer_page, _Site, chat_e2e  # noqa: F401

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)


def test_the_widget_offers_the_rating_when_the_agent_ends_the_chat(
    browser: Browser,
    chat_e2e: tuple[ChatSite, ServerProcess, _Site],  # noqa: F811
) -> None:
    site, server, shop = chat_e2e
    agent = site.agent("Rating Agent", language="bn")
    agent_page = _agent_page(browser, server, agent.email, "bn-BD")
    ctx, customer = _customer_page(browser, shop, "/bn", "bn-BD")
    customer.locator("[data-helpdesk-chat] .hd-launch").click()
    panel = customer.locator("[data-helpdesk-chat] [role=dialog]")
    panel.locator("input[name=name]").fill("সুমি")
    panel.locator("textarea[name=text]").fill("আমার বিল ভুল এসেছে")
    panel.locator("button[type=submit]").click()
    no_thanks = panel.locator("button.hd-l")
    expect(no_thanks.first).to_be_visible()
    if panel.locator(".hd-sugg").count():
        no_thanks.first.click()  # "No, chat with a person"
    offer = agent_page.locator("[data-chat-offers] .chat-offer")
    expect(offer).to_be_visible()
    offer.locator("[data-offer-accept]").click()
    agent_page.wait_for_url("**/agent/tickets/**")
    chat_panel = agent_page.locator("[data-chat-panel]")
    expect(chat_panel.locator("[data-chat-status]")).to_have_text(bn("Active"))
    expect(panel.locator("[data-rating]")).to_have_count(0)  # not while the chat goes on

    chat_panel.locator("[data-chat-end]").click()
    rating = panel.locator("[data-rating]")
    expect(rating).to_be_visible()
    expect(rating).to_contain_text(bn("How was this chat?"))
    rating.locator("[data-score=good]").click()
    expect(rating.locator(".hd-rate-msg")).to_have_text(bn("Thanks for your rating!"))
    rating.locator("textarea").fill("খুব দ্রুত সাহায্য")
    rating.locator("button[type=submit]").click()

    def answers(session: Session) -> list[tuple[Any, ...]]:
        rows = session.scalars(
            select(SatisfactionRating).where(SatisfactionRating.agent_id == agent.id)
        )
        return [(r.score, r.comment, r.channel) for r in rows]

    # The thanks again once the server has it (the widget clears it while sending).
    expect(rating.locator(".hd-rate-msg")).to_have_text(bn("Thanks for your rating!"))
    assert site.run(answers) == [(5, "খুব দ্রুত সাহায্য", "chat")]
    ctx.close()
    agent_page.context.close()
