"""The chat widget's pre-chat form with the admin's custom fields, in Chromium on a customer's
site: the fields appear in the widget's language, the server's error shows beside the field with
the answers kept, and the answers land on the chat's ticket and customer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from channels.chat.settings import configure_chat_channel
from helpdesk.models import Ticket
from helpdesk.services import custom_fields as cf
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess
from tests.conftest import bn
from tests.e2e.test_chat_browser import _Site

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)


def _fields(session: Any) -> None:
    cf.define_field(
        session,
        None,
        object_type="ticket",
        key="order_no",
        type="text",
        label_en="Order number",
        label_bn="অর্ডার নম্বর",
        visible_to_customers=True,
        on_prechat_form=True,
        required_on_forms=True,
    )
    cf.define_field(
        session,
        None,
        object_type="ticket",
        key="product",
        type="dropdown",
        label_en="Product",
        label_bn="পণ্য",
        options=["phone | Phone | ফোন", "laptop | Laptop | ল্যাপটপ"],
        visible_to_customers=True,
        on_prechat_form=True,
    )
    cf.define_field(
        session,
        None,
        object_type="ticket",
        key="bought",
        type="date",
        label_en="Bought on",
        label_bn="কেনার তারিখ",
        visible_to_customers=True,
        on_prechat_form=True,
    )
    cf.define_field(
        session,
        None,
        object_type="customer",
        key="news",
        type="checkbox",
        label_en="Send me news",
        label_bn="আমাকে খবর পাঠান",
        visible_to_customers=True,
        on_prechat_form=True,
    )
    cf.define_field(session, None, object_type="ticket", key="refund_ok", type="checkbox",
                    label_en="Refund approved")  # fmt: skip


@pytest.fixture(scope="module")
def prechat_site(
    tmp_path_factory: pytest.TempPathFactory, e2e_database_url: Callable[[Path], str]
) -> Iterator[tuple[ChatSite, ServerProcess, _Site]]:
    instance = tmp_path_factory.mktemp("prechat-e2e")
    site = ChatSite(instance=instance, database_url=e2e_database_url(instance))
    site.setup()
    site.run(_fields)
    server = site.serve()
    shop = _Site(server.url + "/chat/widget.js")
    site.run(lambda s: configure_chat_channel(s, allowed_origins=[shop.origin]))
    agent = AgentSocket(site.agent("Alex").email)
    agent.connect(server.url)  # online: the widget offers a chat, not the offline form
    try:
        yield site, server, shop
    finally:
        agent.disconnect()
        shop.close()
        site.close()


def test_the_pre_chat_form_asks_the_fields_and_shows_the_servers_errors(
    browser: Browser, prechat_site: tuple[ChatSite, ServerProcess, _Site]
) -> None:
    site, _server, shop = prechat_site
    ctx = browser.new_context(locale="bn-BD")
    page = ctx.new_page()
    page.goto(shop.origin + "/bn")
    page.locator("[data-helpdesk-chat] .hd-launch").click()
    panel = page.locator("[data-helpdesk-chat] [role=dialog]")
    order = panel.get_by_label("অর্ডার নম্বর")
    expect(order).to_be_visible()
    expect(panel.get_by_label("পণ্য")).to_contain_text("ল্যাপটপ")
    expect(panel).not_to_contain_text("Refund")

    # A required field left empty is caught in the widget, beside the field.
    panel.locator("textarea[name=text]").fill("আমার ল্যাপটপ চালু হচ্ছে না")
    panel.get_by_label("পণ্য").select_option("laptop")
    panel.locator("button[type=submit]").click()
    expect(panel.locator("[data-name='custom.order_no'] .hd-err")).to_have_text(
        bn("Please fill in this field.")
    )
    # The server's own check, beside the field: an order number over the field's 1,000
    # characters.
    order.fill("A" * 1001)
    panel.get_by_label("আমাকে খবর পাঠান").check()
    panel.locator("button[type=submit]").click()
    error = panel.locator("[data-name='custom.order_no'] .hd-err")
    expect(error).to_contain_text("অর্ডার নম্বর")
    expect(panel.get_by_label("পণ্য")).to_have_value("laptop")  # the answers are kept
    expect(panel.get_by_label("আমাকে খবর পাঠান")).to_be_checked()

    panel.get_by_label("অর্ডার নম্বর").fill("A-1234")
    panel.get_by_label("কেনার তারিখ").fill("2026-11-30")
    panel.locator("button[type=submit]").click()
    expect(panel.locator(".hd-log")).to_contain_text("আমার ল্যাপটপ চালু হচ্ছে না")

    def check(session: Any) -> None:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.custom == {"order_no": "A-1234", "product": "laptop", "bought": "2026-11-30"}
        assert ticket.customer.custom == {"news": True}

    site.run(check)
    ctx.close()
