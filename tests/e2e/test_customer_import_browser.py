"""The README's tour step 18 in a real browser: an admin imports customers from a spreadsheet's
CSV (preview, then import) and downloads the queue's tickets as CSV."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, FilePayload, expect

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

NewContext = Callable[..., BrowserContext]


def test_import_with_preview_then_export_the_queue(new_context: NewContext) -> None:
    page = new_context().new_page()
    sign_in(page, "admin@example.com")
    tag = uuid.uuid4().hex[:6]
    csv = (
        "\ufeffEmail;Name;Organization\r\n"
        f"imp-{tag}@example.net;সুমি {tag};Tour {tag}\r\n"
        "broken;x;\r\n"
    )
    page.goto("/agent/customers")
    page.get_by_text("Import from CSV", exact=True).click()
    page.set_input_files(
        "input[type=file]",
        files=FilePayload(name="people.csv", mimeType="text/csv", buffer=csv.encode("utf-8")),
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("main")).to_contain_text("Nothing is saved yet")
    expect(page.locator("main")).to_contain_text(f"সুমি {tag}")
    expect(page.locator("tr.field-error")).to_contain_text("broken")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("[role=status]")).to_contain_text("Imported: 1 created")
    page.goto(f"/agent/customers?q=imp-{tag}")
    expect(page.locator("main")).to_contain_text(f"Tour {tag}")

    page.goto("/agent/queue?view=all")
    with page.expect_download() as info:
        page.get_by_text("Export CSV", exact=True).click()
    download = info.value
    assert download.suggested_filename.startswith("tickets-")
    path = download.path()
    assert path is not None
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeffnumber,subject,status") and text.count("\r\n") > 1
    page.goto("/agent/queue?view=open")  # leave the remembered view as the other tests expect
    page.wait_for_load_state("networkidle")
