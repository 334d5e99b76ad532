"""Times in the reader's time zone, dates and counts in the locale's digits (issue 13, item 6).

An agent's own zone (profile), else the instance's (``TIMEZONE``); Bengali pages write
Bengali digits (০-৯) and the bn day periods, never "AM"/"PM"."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.i18n import (
    _,
    _n,
    force_timezone,
    format_datetime,
    format_number,
    format_percent,
    localize,
)
from helpdesk.models import Agent, Message, Ticket
from tests.conftest import AgentClient, MakeTicket, bn

NOON_UTC = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LATIN_PERIOD = re.compile(r"\b(AM|PM)\b")


@pytest.fixture
def noon_ticket(session: Session, make_ticket: MakeTicket) -> Ticket:
    """A ticket whose message arrived at 12:00 UTC (the clock set by hand: receive() takes now)."""
    ticket = make_ticket(subject="Where is my parcel?").ticket
    for message in session.scalars(select(Message).where(Message.ticket_id == ticket.id)):
        message.created_at = NOON_UTC
    session.commit()
    return ticket


def _text(page: str) -> str:
    """What a reader sees: the page without its tags."""
    return re.sub(r"<[^>]+>", " ", page)


def test_an_agent_in_dhaka_sees_18_00_for_a_message_at_noon_utc(
    session: Session, agent: Agent, agent_client: AgentClient, noon_ticket: Ticket
) -> None:
    page = agent_client.get(f"/agent/tickets/{noon_ticket.number}").get_data(as_text=True)
    assert "12:00:00\u202fPM" in page  # the instance's zone: UTC
    agent.timezone = "Asia/Dhaka"
    session.commit()
    page = agent_client.get(f"/agent/tickets/{noon_ticket.number}").get_data(as_text=True)
    assert "6:00:00\u202fPM" in page and "12:00:00\u202fPM" not in page
    assert '<meta name="timezone" content="Asia/Dhaka">' in page  # for times written by script


@pytest.mark.parametrize("app_config", [{"TIMEZONE": "Asia/Dhaka"}])
def test_the_instance_time_zone_is_everyones_default(
    agent_client: AgentClient, noon_ticket: Ticket, client: Any, app_config: dict[str, Any]
) -> None:
    page = agent_client.get(f"/agent/tickets/{noon_ticket.number}").get_data(as_text=True)
    assert "6:00:00\u202fPM" in page


def test_a_bengali_page_has_bengali_digits_and_no_am_pm(
    session: Session, agent: Agent, agent_client: AgentClient, noon_ticket: Ticket
) -> None:
    agent.timezone = "Asia/Dhaka"
    agent.language = "bn"
    session.commit()
    page = agent_client.get(f"/agent/tickets/{noon_ticket.number}").get_data(as_text=True)
    assert bn("Reply") in page
    assert "৫ জানু, ২০২৬ ৬:০০:০০ অপরাহ্ণ" in page
    assert not LATIN_PERIOD.search(_text(page))
    queue = agent_client.get("/agent/queue").get_data(as_text=True)
    assert "মিনিট" in queue or "দিন" in queue or "ঘণ্টা" in queue or "মাস" in queue
    assert not re.search(r"[0-9]+ (মিনিট|ঘণ্টা|দিন|মাস)", queue)  # relative times: Bengali digits


def test_counts_in_bengali_use_bengali_digits(app: Flask, session: Session) -> None:
    with force_locale("bn"):
        assert format_number(1234) == "১,২৩৪"
        assert format_percent(0.125) == "১২.৫%"
        assert "১২" in _("Revision %(n)d", n=12)
        assert "৩" in _n("%(num)d ticket updated.", "%(num)d tickets updated.", 3)
        page = render_template_string(
            '{{ _("Revision %(n)d", n=12) }} {{ 1234|number }} {% trans n=7 %}Last {{ n }}'
            " days.{% endtrans %}"
        )
        assert _("Revision %(n)d", n=12) in page and "১,২৩৪" in page and "৭" in page
        assert not re.search(r"[0-9]", page)
    with force_locale("en"):
        assert format_number(1234) == "1,234"
        assert format_percent(0.5) == "50%"
        assert _("Revision %(n)d", n=12) == "Revision 12"


def test_one_helper_for_dates_in_a_chosen_zone_and_locale(app: Flask, session: Session) -> None:
    with force_locale("bn"), force_timezone("Asia/Dhaka"):
        assert format_datetime(NOON_UTC, "short") == "৫/১/২৬ ৬:০০ অপরাহ্ণ"
    with force_locale("en"), force_timezone("America/New_York"):
        assert format_datetime(NOON_UTC, "short") == "1/5/26, 7:00\u202fAM"
    assert localize("10:30 AM", "bn") == "১০:৩০ পূর্বাহ্ণ"


def test_an_unknown_instance_time_zone_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        create_app({"INSTANCE_PATH": str(tmp_path / "i"), "TIMEZONE": "Mars/Olympus"})
