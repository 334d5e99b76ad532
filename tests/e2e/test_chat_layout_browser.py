"""The agent's side of live chat, laid out in Chromium (issue 13, item 7), in English and Bengali:
an incoming offer leaves the top bar one line high at 1280 and 1024 px (it used to wrap the
agent's name and "Sign out"), and the chat panel is a styled live pane that does not repeat the
ticket's timeline (it was an unstyled numbered list of the same lines)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from channels.chat.lines import MAX_TEXT
from tests.channels.chat.servers import ChatSite, ServerProcess, Visitor
from tests.conftest import bn
from tests.e2e.test_chat_browser import _agent_page, _Site, chat_e2e  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return dict(box)


@pytest.mark.parametrize("width", [1280, 1024])
@pytest.mark.parametrize("locale", ["en-US", "bn-BD"])
def test_an_offer_keeps_the_top_bar_on_one_line_and_the_panel_adds_only_news(
    browser: Browser,
    chat_e2e: tuple[ChatSite, ServerProcess, _Site],  # noqa: F811
    locale: str,
    width: int,
) -> None:
    site, server, _shop = chat_e2e
    lang = locale[:2]
    team = site.team()
    # A long name, as real ones are: it must not wrap either.
    agent = site.agent(f"Anwesha Chakraborty-Sengupta {lang}{width}", team, language=lang)
    page = _agent_page(browser, server, agent.email, locale)
    page.set_viewport_size({"width": width, "height": 800})
    bar_before = _box(page, "header.topbar")

    visitor = Visitor(language=lang)
    visitor.connect(server.url)
    question = "Where is my parcel?" if lang == "en" else "আমার পার্সেল কোথায়?"
    started = visitor.start(question, name="Rina Akter", team=team.id)
    assert started["ok"], started
    offer = page.locator("[data-chat-offers] .chat-offer")
    expect(offer).to_be_visible()
    if lang == "bn":
        expect(offer.locator("[data-offer-accept]")).to_have_text(bn("Accept"))

    # The bar is exactly as high as before, name and "Sign out" side by side on one line, and
    # the offer is whole on the screen.
    bar = _box(page, "header.topbar")
    assert bar["height"] == pytest.approx(bar_before["height"], abs=1), (bar_before, bar)
    name = _box(page, ".topbar .whoami")
    sign_out = _box(page, ".topbar-right form button.link-button")
    assert abs(name["y"] - sign_out["y"]) < 4 and name["height"] < 2 * 16 * 1.6, (name, sign_out)
    shown = _box(page, "[data-chat-offers] .chat-offer")
    assert shown["x"] >= 0 and shown["x"] + shown["width"] <= width, shown
    assert shown["y"] >= bar["y"] + bar["height"] - 1, (shown, bar)  # under the bar, not in it

    offer.locator("[data-offer-accept]").click()
    page.wait_for_url("**/agent/tickets/**")
    panel = page.locator("[data-chat-panel]")
    expect(panel.locator("[data-chat-status]")).not_to_have_text(
        "Connecting…" if lang == "en" else bn("Connecting…")
    )
    # Not a numbered list, and not the timeline again: the question is in the timeline only.
    expect(panel.locator("ol")).to_have_count(0)
    expect(page.locator(".timeline")).to_contain_text(question)
    expect(panel).not_to_contain_text(question)
    empty = "New messages appear here as they arrive; the conversation so far is below."
    expect(panel.locator("[data-chat-empty]")).to_have_text(empty if lang == "en" else bn(empty))

    # New lines arrive in the panel, as bubbles: the customer's on the left, the agent's on the
    # right; the timeline keeps what it had.
    later = "It says delivered." if lang == "en" else "বলছে ডেলিভারি হয়েছে।"
    assert visitor.say(later)["ok"]
    theirs = panel.locator(".chat-line.from-visitor")
    expect(theirs).to_contain_text(later)
    page.locator("[data-chat-input]").fill("Checking")
    page.locator("[data-chat-input]").press("Enter")
    ours = panel.locator(".chat-line.from-agent")
    expect(ours).to_contain_text("Checking")
    expect(panel.locator("[data-chat-empty]")).to_be_hidden()
    expect(panel.locator(".chat-line")).to_have_count(2)
    left, right = theirs.bounding_box(), ours.bounding_box()
    log = panel.locator("[data-chat-log]").bounding_box()
    assert left and right and log
    assert left["x"] - log["x"] < 30, (left, log)
    assert (log["x"] + log["width"]) - (right["x"] + right["width"]) < 30, (right, log)
    assert right["x"] > left["x"] + left["width"] / 2
    # The composer and its button on one line.
    compose = panel.locator("[data-chat-input]").bounding_box()
    send = panel.locator(".chat-compose button[type=submit]").bounding_box()
    assert compose and send
    assert abs(compose["y"] + compose["height"] - send["y"] - send["height"]) < 12

    visitor.disconnect()
    page.select_option("[data-presence]", "offline")
    expect(page.locator("[data-presence]")).to_have_value("offline")
    page.context.close()


@pytest.mark.parametrize(("locale", "path"), [("en-US", "/en"), ("bn-BD", "/bn")])
def test_the_widget_stops_a_line_at_the_servers_limit_and_says_so(
    browser: Browser,
    chat_e2e: tuple[ChatSite, ServerProcess, _Site],  # noqa: F811
    locale: str,
    path: str,
) -> None:
    """Item 21: the widget never sends a line the server would refuse (a ~1 MB paste used to
    drop the connection and be re-sent after every reconnect)."""
    _site, _server, shop = chat_e2e
    ctx = browser.new_context(locale=locale)
    page = ctx.new_page()
    page.goto(shop.origin + path)
    page.locator("[data-helpdesk-chat] .hd-launch").click()
    panel = page.locator("[data-helpdesk-chat] [role=dialog]")
    box = panel.locator("textarea[name=text]")
    expect(box).to_have_attribute("maxlength", str(MAX_TEXT))
    box.fill("ঋ" * (MAX_TEXT + 500))
    expect(box).to_have_value("ঋ" * MAX_TEXT)
    message = "Your message is too long: at most %(n)s characters."
    shown = message if locale == "en-US" else bn(message)
    before, _n, after = shown.partition("%(n)s")
    expect(panel.locator(".hd-status")).to_contain_text(before.strip())
    expect(panel.locator(".hd-status")).to_contain_text(after.strip())
    ctx.close()


def test_chat_lines_shown_live_are_no_new_activity_but_a_colleagues_note_is(
    browser: Browser,
    chat_e2e: tuple[ChatSite, ServerProcess, _Site],  # noqa: F811
) -> None:
    site, server, _shop = chat_e2e
    team = site.team()
    agent = site.agent("Mita Live", team)
    colleague = site.agent("Kabir Colleague", team)
    page = _agent_page(browser, server, agent.email, "en-US")
    visitor = Visitor()
    visitor.connect(server.url)
    assert visitor.start("Is my order shipped?", team=team.id)["ok"]
    page.locator("[data-chat-offers] .chat-offer [data-offer-accept]").click()
    page.wait_for_url("**/agent/tickets/**")
    main = page.locator("section.ticket-main")
    panel = page.locator("[data-chat-panel]")
    expect(panel.locator("[data-chat-status]")).not_to_have_text("Connecting…")
    version = int(main.get_attribute("data-ticket-version") or 0)

    # The customer's line and the agent's own: the panel shows both, the page knows their
    # update and says nothing.
    assert visitor.say("Order 1142, please")["ok"]
    expect(panel.locator(".chat-line.from-visitor")).to_contain_text("Order 1142")
    page.locator("[data-chat-input]").fill("Let me look")
    page.locator("[data-chat-input]").press("Enter")
    expect(panel.locator(".chat-line.from-agent")).to_contain_text("Let me look")
    page.wait_for_function(
        "v => Number(document.querySelector('section.ticket-main').dataset.ticketVersion) >= v",
        arg=version + 2,
    )
    expect(page.locator("[data-ticket-changed]")).to_be_hidden()

    # A colleague's note, written in their own browser, is not in the panel: that is news.
    other = _agent_page(browser, server, colleague.email, "en-US")
    other.goto(page.url)
    other.locator("[data-tab=note]").click()
    other.fill("#note-body", "Customer called too")
    other.locator(".note-form button[type=submit]").click()
    expect(other.locator(".timeline")).to_contain_text("Customer called too")
    expect(page.locator("[data-ticket-changed]")).to_be_visible()
    visitor.disconnect()
    other.context.close()
    page.context.close()
