"""An admin invites an agent in a real browser; the agent reads the mail, chooses a password
and signs in (issue 13, item 5)."""

from __future__ import annotations

import email
import re
import time
from collections.abc import Callable
from email.policy import default
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import LiveServer, sign_in

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


def _invitation_link(outbox: Path, address: str, timeout: float = 15.0) -> str:
    """The link in the invitation mail the server's worker writes to its mail-outbox folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in outbox.glob("*.eml"):
            mail = email.message_from_bytes(path.read_bytes(), policy=default)
            if address in str(mail["To"]):
                body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                match = re.search(r"https?://\S+/welcome/\S+", body)
                assert match, body
                return match.group(0)
        time.sleep(0.2)  # the worker polls every 0.5 s; nothing to wait on across processes
    raise AssertionError(f"no invitation mail to {address} in {outbox}")


def test_invite_set_password_and_sign_in(new_context: NewContext, live_server: LiveServer) -> None:
    admin = new_context().new_page()
    sign_in(admin, "admin@example.com")
    admin.locator("[data-admin-menu] > summary").click()  # the top bar's Admin menu
    admin.get_by_role("link", name="Agents").click()
    expect(admin.locator("h1")).to_have_text("Agents")
    admin.fill("#invite-name", "Rina Browser")
    admin.fill("#invite-email", "rina.browser@example.com")
    admin.check("#invite-kb_editor")
    admin.get_by_role("button", name="Send invitation").click()
    expect(admin.locator(".flash-success")).to_contain_text("rina.browser@example.com")
    expect(admin.locator('tr[data-agent="rina.browser@example.com"]')).to_contain_text("Invited")

    link = _invitation_link(live_server.instance / "mail-outbox", "rina.browser@example.com")
    page = new_context().new_page()
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Choose your password")
    page.fill("#new", "rina's long secret")
    page.fill("#confirm", "rina's long secret")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator(".flash-success")).to_contain_text("Sign in with rina.browser@example.com")
    sign_in(page, "rina.browser@example.com", "rina's long secret")
    expect(page.locator(".whoami")).to_have_text("Rina Browser")
    page.locator(".whoami").click()
    expect(page.locator("h1")).to_have_text("Your profile")


def test_a_bengali_agent_reads_bengali_digits_in_the_browser(new_context: NewContext) -> None:
    """Counts written by script (the queue's view counts) and the server's times, in bn."""
    page = new_context().new_page()
    sign_in(page, "nusrat@example.com")  # the demo's Bengali-speaking agent, in Asia/Dhaka
    count = page.locator('[data-view-count="open"]')
    expect(count).to_have_text(re.compile(r"^[০-৯]+$"))
    row = page.locator("tbody tr").first
    row.locator("a").first.click()
    times = page.locator("li.msg time")
    expect(times.first).to_have_text(re.compile(r"[০-৯]+:[০-৯]{2}:[০-৯]{2} (পূর্বাহ্ণ|অপরাহ্ণ)"))
    assert not re.search(r"\b(AM|PM)\b", page.locator("main").inner_text())
    assert not re.search(r"[0-9]", times.first.inner_text())
