"""The JSON that docs/email.md shows for `helpdesk channel list --json` and `helpdesk tickets
show --json` has the keys the commands really print (a script written from the docs works)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.imap import fetch_once
from helpdesk.models import Ticket
from tests.channels.email.conftest import Mailbox, MakeChannel, make_mail

DOCS = Path(__file__).resolve().parents[3] / "docs" / "email.md"


def _documented(heading: str) -> Any:
    """The JSON block under ``heading`` in docs/email.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, f"no JSON example under {heading}"
    return json.loads(block.group(1))


def test_documented_json_keys_are_what_the_commands_print(
    app: Flask, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    channel = make_channel(acknowledge=True)
    fetch_once(app, channel.id)
    mailbox.append(
        make_mail(
            "তানজিলা <tanjila@example.com>",
            "রিফান্ড কবে পাব?",
            message_id="doc1@example.com",
            attachments=[("চালান.pdf", "application/pdf", b"%PDF-1.4 doc")],
        )
    )
    fetch_once(app, channel.id)
    number = session.scalars(select(Ticket.number)).one()
    runner = app.test_cli_runner()

    channels = json.loads(runner.invoke(args=["channel", "list", "--json"]).output)
    shown_channel = _documented("### `helpdesk channel list --json`")[0]
    assert set(channels[0]) == set(shown_channel)
    assert set(channels[0]["checkpoints"][0]) == set(shown_channel["checkpoints"][0])
    assert set(channels[0]["settings"]["imap"]) == set(shown_channel["settings"]["imap"])

    ticket = json.loads(runner.invoke(args=["tickets", "show", str(number), "--json"]).output)
    shown_ticket = _documented("### `helpdesk tickets show NUMBER --json`")
    assert set(ticket) == set(shown_ticket)
    inbound, acknowledgement = ticket["messages"]
    assert set(inbound) == set(shown_ticket["messages"][0])
    assert set(inbound["attachments"][0]) == set(shown_ticket["messages"][0]["attachments"][0])
    assert acknowledgement["delivery_status"] == "queued"
