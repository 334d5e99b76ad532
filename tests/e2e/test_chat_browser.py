"""Live chat in Chromium: a customer on another site with the one-tag widget, an agent in the
agent UI, both in their own browser context. In English and in Bengali."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from channels.chat.settings import configure_chat_channel
from tests.channels.chat.servers import PASSWORD, ChatSite, ServerProcess
from tests.conftest import bn
from tests.servers import free_port

pytestmark = pytest.mark.e2e
# The machine may be busy (CI runs on 2 cores): allow assertions more than the default 5 s.
expect.set_options(timeout=15_000)


class _Site:
    """A customer's website on its own origin (localhost:<port>), embedding the widget."""

    def __init__(self, widget_url: str) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        pages = {
            # The one-tag embed; the Bengali page also sets colour and position.
            "/en": '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
            f'</head><body><h1>Our shop</h1><script src="{widget_url}" async></script>'
            "</body></html>",
            "/bn": '<!doctype html><html lang="bn"><head><meta charset="utf-8"><title>দোকান</title>'
            f'</head><body><h1>আমাদের দোকান</h1><script src="{widget_url}" '
            'data-colour="#0f766e" data-position="left" async></script></body></html>',
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def chat_e2e(
    tmp_path_factory: pytest.TempPathFactory, e2e_database_url: Callable[[Path], str]
) -> Iterator[tuple[ChatSite, ServerProcess, _Site]]:
    instance = tmp_path_factory.mktemp("chat-e2e")
    site = ChatSite(instance=instance, database_url=e2e_database_url(instance))
    site.setup()
    _kb_article(site)
    server = site.serve()
    shop = _Site(server.url + "/chat/widget.js")
    # The server reads the channel's allowed origins afresh after a few seconds; the socket
    # check in the namespace reads them on every connection.
    site.run(lambda s: configure_chat_channel(s, allowed_origins=[shop.origin]))
    try:
        yield site, server, shop
    finally:
        shop.close()
        site.close()


def _kb_article(site: ChatSite) -> None:
    from kb.services import create_article

    def add(session: Any) -> None:
        create_article(
            session,
            title="Tracking a delayed parcel",
            body="If your parcel is late, open the tracking link in your order email.",
            language="en",
            status="published",
        )
        create_article(
            session,
            title="দেরিতে আসা পার্সেল ট্র্যাক করা",
            body="পার্সেল দেরি হলে অর্ডারের ইমেইলের ট্র্যাকিং লিংক খুলুন।",
            language="bn",
            status="published",
        )

    site.run(add)
    exe = Path(sys.executable).with_name("helpdesk")
    subprocess.run([str(exe), "kb", "reindex"], env=site.env, check=True, capture_output=True,
                   timeout=300)  # fmt: skip


def _agent_page(browser: Browser, server: ServerProcess, email: str, locale: str) -> Page:
    ctx = browser.new_context(base_url=server.url, locale=locale)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/agent/queue")
    expect(page.locator("html[data-live=connected]")).to_be_attached()
    page.select_option("[data-presence]", "online")
    expect(page.locator("[data-presence]")).to_have_value("online")
    return page


def _customer_page(
    browser: Browser, shop: _Site, path: str, locale: str
) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(locale=locale)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(shop.origin + path)
    return ctx, page


@pytest.mark.parametrize(
    ("locale", "path", "question", "reply", "answer"),
    [
        ("en-US", "/en", "My parcel is late, where is it?", "Let me check the tracking.",
         "Thanks, found it!"),
        ("bn-BD", "/bn", "আমার পার্সেল দেরিতে আসছে, কোথায়?", "আমি ট্র্যাকিং দেখছি।",
         "ধন্যবাদ, পেয়েছি!"),
    ],
)  # fmt: skip
def test_customer_and_agent_chat_live(
    browser: Browser,
    chat_e2e: tuple[ChatSite, ServerProcess, _Site],
    locale: str,
    path: str,
    question: str,
    reply: str,
    answer: str,
) -> None:
    site, server, shop = chat_e2e
    lang = locale[:2]
    agent = site.agent(f"Agent {lang}", language=lang)
    agent_page = _agent_page(browser, server, agent.email, locale)

    ctx, customer = _customer_page(browser, shop, path, locale)
    launcher = customer.locator("[data-helpdesk-chat] .hd-launch")
    launcher.click()
    panel = customer.locator("[data-helpdesk-chat] [role=dialog]")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("lang", lang)
    panel.locator("input[name=name]").fill("Rina" if lang == "en" else "রিনা")
    panel.locator("textarea[name=text]").fill(question)
    panel.locator("button[type=submit]").click()

    # The first question gets KB suggestions before a person is involved.
    suggestions = panel.locator(".hd-sugg")
    expect(suggestions.first).to_be_visible()
    expect(panel.locator(".hd-sugg a").first).to_contain_text(
        "Tracking" if lang == "en" else "ট্র্যাক"
    )
    panel.locator("button.hd-l").click()  # "No, chat with a person"

    # The agent is notified, accepts and lands on the chat ticket.
    offer = agent_page.locator("[data-chat-offers] .chat-offer")
    expect(offer).to_be_visible()
    offer.locator("[data-offer-accept]").click()
    agent_page.wait_for_url("**/agent/tickets/**")
    chat_panel = agent_page.locator("[data-chat-panel]")
    # The question is in the timeline; the panel does not repeat it: it shows what comes next.
    expect(agent_page.locator(".timeline")).to_contain_text(question)
    expect(chat_panel.locator("[data-chat-empty]")).to_be_visible()
    expect(chat_panel.locator(".chat-line")).to_have_count(0)
    expect(panel.locator("[role=status]").last).to_contain_text(f"Agent {lang}")
    # The panel is live (it has joined the chat's room) once it shows the chat's state.
    expect(chat_panel.locator("[data-chat-status]")).to_have_text(
        "Active" if lang == "en" else bn("Active")
    )

    # Typing both ways.
    agent_page.locator("[data-chat-input]").press_sequentially("Hi")
    expect(panel.locator(".hd-status")).to_contain_text(f"Agent {lang}")
    agent_page.locator("[data-chat-input]").fill("")
    customer_box = panel.locator(".hd-compose textarea")
    customer_box.press_sequentially("..")
    expect(chat_panel.locator("[data-chat-typing]")).to_be_visible()
    customer_box.fill("")

    # Lines both ways, live.
    agent_page.locator("[data-chat-input]").fill(reply)
    agent_page.locator("[data-chat-input]").press("Enter")
    expect(panel.locator(".hd-line").last).to_contain_text(reply)
    customer_box.fill(answer)
    customer_box.press("Enter")
    expect(chat_panel.locator(".chat-line.from-visitor").last).to_contain_text(answer)
    expect(panel.locator(".hd-me .hd-meta").last).not_to_contain_text("…")

    # A reload resumes the same conversation from the token in localStorage.
    customer.reload()
    customer.locator("[data-helpdesk-chat] .hd-launch").click()
    expect(panel.locator(".hd-line").last).to_contain_text(answer)
    expect(panel.locator(".hd-line")).to_have_count(3)
    agent_page.select_option("[data-presence]", "offline")
    expect(agent_page.locator("[data-presence]")).to_have_value("offline")
    ctx.close()
    agent_page.context.close()
