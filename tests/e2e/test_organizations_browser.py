"""The README's tour step for organizations in a real browser, as a Bengali-speaking agent: create
an organization with the demo customers' email domain, link the customers known before, see
its page (open tickets first) and filter the queue by it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.conftest import bn
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


def test_an_organization_links_its_domain_and_filters_the_queue(new_context: NewContext) -> None:
    page = new_context().new_page()
    sign_in(page, "nusrat@example.com")  # নুসরাত জাহান, who reads Bengali
    name = f"উদাহরণ লিমিটেড {uuid.uuid4().hex[:6]}"
    page.locator("nav.topnav").get_by_text(bn("Organizations"), exact=True).click()
    page.get_by_text(bn("New organization"), exact=True).click()
    page.fill("#o-name", name)
    page.fill("#o-domains", "EXAMPLE.com")
    page.fill("#o-notes", "বার্ষিক চুক্তি")
    page.locator("form button[type=submit].primary").click()
    expect(page.locator(".flashes")).to_contain_text(bn("Organization saved."))
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("main")).to_contain_text("example.com")

    # The demo's customers were there before the domain: linked on demand.
    page.get_by_role("button", name=bn("Link customers from these domains")).click()
    expect(page.locator(".flashes")).to_contain_text(
        bn("%(num)d customer joined this organization.").split("%(num)d")[-1].strip()
    )
    expect(page.locator("main")).to_contain_text("রহিম উদ্দিন")
    expect(page.locator("[data-open-count]")).to_contain_text(
        bn("Open tickets: %(count)s").split("%(count)s")[0].strip()
    )
    open_count = int(page.locator("[data-open-count]").get_attribute("data-open-count") or "0")
    assert open_count > 0

    # Show in the queue: the queue filtered by the organization, its chip shown.
    page.get_by_text(bn("Show in the queue"), exact=True).click()
    expect(page.locator("[data-organization-filter]")).to_contain_text(name)
    expect(page.locator("tbody tr[data-ticket-id]").first).to_be_visible()
    # Leave this agent's remembered queue as it was for the other browser tests.
    page.goto("/agent/queue?view=open")
    page.wait_for_load_state("networkidle")
