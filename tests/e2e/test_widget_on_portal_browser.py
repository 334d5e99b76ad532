"""The chat widget on our own portal, under the portal's strict Content-Security-Policy: styled
(a floating launcher and panel), nothing refused by the policy, in English and Bengali."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.conftest import bn

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


@pytest.mark.parametrize("locale", ["en-US", "bn"])
def test_the_widget_is_styled_under_the_portals_policy(
    new_context: NewContext, locale: str
) -> None:
    page = new_context(locale=locale).new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto("/portal/")
    title = "Chat with us" if locale == "en-US" else bn("Chat with us")
    launch = page.locator("[data-helpdesk-chat] .hd-launch")
    expect(launch).to_have_text(title)
    # Styled: the launcher floats at the bottom right of the window, in the widget's colour.
    expect(launch).to_have_css("position", "fixed")
    box = launch.bounding_box()
    assert box is not None and box["x"] > 1000 and box["y"] > 800, box
    launch.click()
    panel = page.locator("[data-helpdesk-chat] .hd-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_css("position", "fixed")
    assert refused == []
    assert failed == []  # not even /favicon.ico
