"""Chat settings, agent files and offer timeouts in Chromium: an admin changes the settings on
the page, the widget on a customer's site follows them, the agent sends a file the customer
downloads; an offer the agent lets pass disappears and sets them away."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from channels.chat.settings import configure_chat_channel
from helpdesk.models import AgentRole
from helpdesk.services.agents import create_agent
from tests.channels.chat.servers import PASSWORD, ChatSite, ServerProcess
from tests.e2e.test_chat_browser import _agent_page, _Site

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def chat_site(
    tmp_path_factory: pytest.TempPathFactory, e2e_database_url: Callable[[Path], str]
) -> Iterator[tuple[ChatSite, ServerProcess, _Site]]:
    instance = tmp_path_factory.mktemp("chat-features-e2e")
    site = ChatSite(instance=instance, database_url=e2e_database_url(instance))
    site.setup()
    server = site.serve()
    shop = _Site(server.url + "/chat/widget.js")
    site.run(lambda s: configure_chat_channel(s, allowed_origins=[shop.origin]))
    try:
        yield site, server, shop
    finally:
        shop.close()
        site.close()


def _admin_page(browser: Browser, site: ChatSite, server: ServerProcess) -> Page:
    email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    site.run(lambda s: create_agent(s, email, "Ada Admin", PASSWORD, AgentRole.ADMIN))
    page = browser.new_context(base_url=server.url).new_page()
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/agent/queue")
    return page


def test_settings_page_drives_the_widget_and_agent_sends_a_file(
    browser: Browser, chat_site: tuple[ChatSite, ServerProcess, _Site], tmp_path: Path
) -> None:
    site, server, shop = chat_site
    admin = _admin_page(browser, site, server)
    admin.locator("[data-admin-menu] > summary").click()  # the top bar's Admin menu
    admin.get_by_role("link", name="Chat settings").click()
    admin.get_by_label("Visitors must give their name before chatting").check()
    admin.get_by_label("Visitors may ask for the transcript by email").uncheck()
    admin.get_by_role("button", name="Save chat settings").click()
    expect(admin.get_by_text("Chat settings saved.")).to_be_visible()
    expect(admin.get_by_label("Visitors must give their name before chatting")).to_be_checked()
    # The allowed origin set for this site is still there (the page showed it, and kept it).
    expect(admin.locator("#allowed_origins")).to_have_value(shop.origin)
    admin.context.close()

    agent = site.agent("Quinn")
    agent_page = _agent_page(browser, server, agent.email, "en-US")
    customer = browser.new_context(locale="en-US").new_page()
    customer.goto(shop.origin + "/en")
    customer.locator("[data-helpdesk-chat] .hd-launch").click()
    panel = customer.locator("[data-helpdesk-chat] [role=dialog]")
    name = panel.locator("input[name=name]")
    expect(name).to_have_attribute("required", "")
    panel.locator("textarea[name=text]").fill("Could you send my invoice?")
    panel.locator("button[type=submit]").click()
    expect(panel.locator(".hd-err")).to_have_text("Please fill in this field.")
    name.fill("Rina")
    panel.locator("button[type=submit]").click()

    offer = agent_page.locator("[data-chat-offers] .chat-offer")
    offer.locator("[data-offer-accept]").click()
    agent_page.wait_for_url("**/agent/tickets/**")
    chat_panel = agent_page.locator("[data-chat-panel]")
    # The question is in the timeline; the panel shows only what comes after the page load.
    expect(agent_page.locator(".timeline")).to_contain_text("invoice")
    # No transcript button in the widget: the admin turned it off.
    expect(panel.locator(".hd-tools button")).to_have_count(1)  # only "End chat"

    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 invoice 12")
    chat_panel.locator("[data-chat-file]").set_input_files(str(invoice))
    expect(chat_panel.locator(".chat-line.from-agent a.chat-file")).to_have_text("invoice.pdf")
    link = panel.locator(".hd-line a[href*='/chat/api/attachments/']")
    expect(link).to_be_visible()
    with customer.expect_download() as download:
        link.click()
    saved = tmp_path / "got.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes() == invoice.read_bytes()
    customer.context.close()
    agent_page.context.close()


def test_an_offer_left_alone_goes_away_and_sets_the_agent_away(
    browser: Browser, chat_site: tuple[ChatSite, ServerProcess, _Site]
) -> None:
    site, server, shop = chat_site
    site.run(lambda s: configure_chat_channel(s, offer_timeout=2, away_after_missed=1,
                                              name_required=False))  # fmt: skip
    agent = site.agent("Ravi")
    agent_page = _agent_page(browser, server, agent.email, "en-US")
    customer = browser.new_context(locale="en-US").new_page()
    customer.goto(shop.origin + "/en")
    customer.locator("[data-helpdesk-chat] .hd-launch").click()
    panel = customer.locator("[data-helpdesk-chat] [role=dialog]")
    panel.locator("textarea[name=text]").fill("Hello?")
    panel.locator("button[type=submit]").click()

    offer = agent_page.locator("[data-chat-offers] .chat-offer")
    expect(offer).to_be_visible()
    # Nobody clicks: the offer is withdrawn, the agent is away, the visitor is told they wait.
    expect(offer).to_have_count(0)
    expect(agent_page.locator("[data-presence]")).to_have_value("away")
    expect(panel.locator(".hd-status")).to_contain_text("number 1 in line")
    customer.context.close()
    agent_page.context.close()
    site.run(lambda s: configure_chat_channel(s, offer_timeout=30, away_after_missed=2))
