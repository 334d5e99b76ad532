"""Admin -> Business hours in the browser's terms: create and edit a calendar (a line per
weekday, Sunday first), make it the default, delete it after confirming; its closed days by year
(Bangladesh's public holidays copied in, estimated Islamic dates to confirm, the business's own
days added and removed); a team's calendar; in English and Bengali (Bengali digits in dates);
nobody but an admin reaches it, and every form needs its CSRF token."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AgentRole, Calendar, Team
from helpdesk.services import business_hours
from helpdesk.services.agents import create_agent, create_team
from tests.conftest import PASSWORD, AgentClient, bn, login

pytestmark = pytest.mark.usefixtures("db_backend")

WEEK = {
    "sun": "09:00-13:00, 14:00-17:00",
    "mon": "09:00-17:00",
    "tue": "09:00-17:00",
    "wed": "09:00-17:00",
    "thu": "09:00-17:00",
    "fri": "",
    "sat": "",
}


def signed_in(app: Flask, email: str) -> AgentClient:
    client: FlaskClient = app.test_client()
    assert login(client, email).status_code == 302
    return AgentClient(client)


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> AgentClient:
    return signed_in(app, admin.email)


def _calendar(session: Session, name: str) -> Calendar:
    session.expire_all()
    found = session.scalar(select(Calendar).where(Calendar.name == name))
    assert found is not None
    return found


def test_an_admin_creates_edits_makes_default_and_deletes_a_calendar(
    session: Session, admin_client: AgentClient
) -> None:
    menu = admin_client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/admin/calendars"' in menu
    blank = admin_client.get("/admin/calendars/new").get_data(as_text=True)
    # The default week is filled in: Sunday to Thursday 09:00-17:00, Friday closed.
    assert 'name="sun" placeholder="closed" type="text" value="09:00-17:00"' in blank
    assert 'name="fri" placeholder="closed" type="text" value=""' in blank
    assert blank.index('name="sun"') < blank.index('name="mon"') < blank.index('name="sat"')

    made = admin_client.post(
        "/admin/calendars/new",
        {"name": "Dhaka office", "timezone": "Asia/Dhaka", "public_holidays": "y", **WEEK},
    )
    assert made.status_code == 302
    calendar = _calendar(session, "Dhaka office")
    assert made.headers["Location"].endswith(f"/admin/calendars/{calendar.id}")
    assert calendar.hours["sun"] == [["09:00", "13:00"], ["14:00", "17:00"]]
    assert "fri" not in calendar.hours and "sat" not in calendar.hours
    assert calendar.country == "BD"
    assert date(2026, 12, 16) in {h.day for h in calendar.holidays}  # Victory Day

    listing = admin_client.get("/admin/calendars").get_data(as_text=True)
    row = listing[listing.index(f'data-calendar="{calendar.id}"') :]
    assert "Dhaka office" in row and "Asia/Dhaka" in row
    assert "Sun 09:00–13:00, 14:00–17:00" in row and "Fri" not in row[: row.index("</tr>")]

    # A mistake is shown on the form with what was typed kept; nothing changes.
    bad = admin_client.post(
        f"/admin/calendars/{calendar.id}",
        {"name": "Dhaka desk", "timezone": "Asia/Dhaka", **WEEK, "mon": "17:00-09:00"},
    )
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "mon: an interval must end after it starts." in page
    assert 'value="Dhaka desk"' in page and 'value="17:00-09:00"' in page
    assert _calendar(session, "Dhaka office").hours["mon"] == [["09:00", "17:00"]]

    saved = admin_client.post(
        f"/admin/calendars/{calendar.id}",
        {"name": "Dhaka desk", "timezone": "Asia/Kolkata", **WEEK, "sat": "10:00-14:00"},
    )
    assert saved.status_code == 302
    calendar = _calendar(session, "Dhaka desk")
    assert calendar.timezone == "Asia/Kolkata" and calendar.hours["sat"] == [["10:00", "14:00"]]

    other = business_hours.create_calendar(session, None, name="Night shift", is_default=True)
    session.commit()
    assert admin_client.post(f"/admin/calendars/{calendar.id}/default").status_code == 302
    assert _calendar(session, "Dhaka desk").is_default
    assert not _calendar(session, "Night shift").is_default
    edit = admin_client.get(f"/admin/calendars/{calendar.id}").get_data(as_text=True)
    assert "data-default" in edit and "/delete" not in edit  # the default is not deletable

    confirm = admin_client.get(f"/admin/calendars/{other.id}/delete")
    assert "Delete calendar Night shift?" in confirm.get_data(as_text=True)
    assert admin_client.post(f"/admin/calendars/{other.id}/delete").status_code == 302
    session.expire_all()
    assert session.get(Calendar, other.id) is None
    # The default refuses even when asked directly.
    refused = admin_client.post(f"/admin/calendars/{calendar.id}/delete", follow_redirects=True)
    assert "The default calendar cannot be deleted" in refused.get_data(as_text=True)
    assert session.get(Calendar, calendar.id) is not None


def test_closed_days_by_year_added_confirmed_removed_and_imported(
    session: Session, admin_client: AgentClient
) -> None:
    calendar = business_hours.create_calendar(
        session, None, name="Support", country="BD", years=[2027]
    )
    session.commit()
    url = f"/admin/calendars/{calendar.id}"
    page = admin_client.get(url).get_data(as_text=True)
    assert "<h3>2027</h3>" in page and "<h3>2026</h3>" not in page
    eid = page[page.index('data-holiday="2027-03-10"') :]
    eid = eid[: eid.index("</tr>")]
    assert "Eid al-Fitr" in eid and "estimated — confirm the date" in eid
    assert "Public (BD)" in eid

    # The moon was sighted a day later: the admin adds the real day and removes the estimate.
    assert (
        admin_client.post(
            f"{url}/holidays", {"day": "2027-03-11", "name": "Eid al-Fitr", "name_bn": "ঈদুল ফিতর"}
        ).status_code
        == 302
    )
    assert admin_client.post(f"{url}/holidays/2027-03-10/remove").status_code == 302
    admin_client.post(f"{url}/holidays", {"day": "2026-12-31", "name": "Year end"})
    page = admin_client.get(url).get_data(as_text=True)
    assert 'data-holiday="2027-03-10"' not in page
    confirmed = page[page.index('data-holiday="2027-03-11"') :]
    assert "estimated" not in confirmed[: confirmed.index("</tr>")]
    year_end = page[page.index('data-holiday="2026-12-31"') :]
    assert "Year end" in year_end[: year_end.index("</tr>")] and "Custom" in year_end
    assert page.index("<h3>2026</h3>") < page.index("<h3>2027</h3>")

    imported = admin_client.post(
        f"{url}/public-holidays", {"country": "BD", "year": "2026"}, follow_redirects=True
    )
    text = imported.get_data(as_text=True)
    added = len([h for h in _calendar(session, "Support").holidays if h.day.year == 2026]) - 1
    assert added > 10 and f"Public holidays added: {added}." in text
    assert 'data-holiday="2026-12-16"' in text
    again = admin_client.post(
        f"{url}/public-holidays", {"country": "BD", "year": "2026"}, follow_redirects=True
    )
    assert "Public holidays added: 0." in again.get_data(as_text=True)
    unknown = admin_client.post(
        f"{url}/public-holidays", {"country": "ZZ", "year": "2026"}, follow_redirects=True
    )
    assert "No public holidays are known for ZZ." in unknown.get_data(as_text=True)


def test_the_pages_are_in_bengali_with_bengali_digits(
    app: Flask, session: Session, admin: Agent
) -> None:
    create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.ADMIN, "bn")
    calendar = business_hours.create_calendar(
        session, None, name="ঢাকা অফিস", country="BD", years=[2026, 2027]
    )
    session.commit()
    client = signed_in(app, "nusrat@example.com")
    listing = client.get("/admin/calendars").get_data(as_text=True)
    assert bn("Business hours") in listing and bn("New calendar") in listing
    assert "রবি ০৯:০০–১৭:০০" in listing  # Sunday, in Bengali digits
    page = client.get(f"/admin/calendars/{calendar.id}").get_data(as_text=True)
    for msgid in ("Closed days", "Opening hours", "Add a closed day", "Make default"):
        assert bn(msgid) in page
    assert "রবিবার" in page and "শুক্রবার" in page  # the weekday lines
    victory = page[page.index('data-holiday="2026-12-16"') :]
    victory = victory[: victory.index("</tr>")]
    assert "বিজয় দিবস" in victory and "১৬" in victory and "২০২৬" in victory
    assert "16" not in victory.split("</time>")[0].split(">")[-1]
    assert "<h3>২০২৬</h3>" in page
    eid = page[page.index('data-holiday="2027-03-10"') :]
    assert bn("estimated — confirm the date") in eid[: eid.index("</tr>")]


def test_a_team_uses_a_calendar(session: Session, admin_client: AgentClient) -> None:
    calendar = business_hours.create_calendar(session, None, name="Chittagong")
    team = create_team(session, "Billing")
    session.commit()
    form = admin_client.get(f"/admin/teams/{team.id}").get_data(as_text=True)
    assert '<option selected value="">Default calendar</option>' in form
    assert f'<option value="{calendar.id}">Chittagong</option>' in form
    posted = admin_client.post(
        f"/admin/teams/{team.id}", {"name": "Billing", "mode": "off", "calendar": calendar.id}
    )
    assert posted.status_code == 302
    session.expire_all()
    assert session.get(Team, team.id).calendar_id == calendar.id  # type: ignore[union-attr]
    shown = admin_client.get(f"/admin/teams/{team.id}").get_data(as_text=True)
    assert f'<option selected value="{calendar.id}">Chittagong</option>' in shown
    admin_client.post(f"/admin/teams/{team.id}", {"name": "Billing", "mode": "off", "calendar": ""})
    session.expire_all()
    assert session.get(Team, team.id).calendar_id is None  # type: ignore[union-attr]
    made = admin_client.post(
        "/admin/teams/new", {"name": "Sales", "mode": "off", "calendar": calendar.id}
    )
    assert made.status_code == 302
    assert session.scalar(select(Team.calendar_id).where(Team.name == "Sales")) == calendar.id


def test_agents_get_a_404_and_forms_need_csrf(
    app: Flask, session: Session, admin: Agent, agent_client: AgentClient
) -> None:
    calendar = business_hours.create_calendar(session, None, name="Support")
    session.commit()
    paths = ("/admin/calendars", "/admin/calendars/new", f"/admin/calendars/{calendar.id}")
    for path in (*paths, f"/admin/calendars/{calendar.id}/delete"):
        assert agent_client.get(path).status_code == 404
    assert agent_client.post(f"/admin/calendars/{calendar.id}/default").status_code == 404
    admin_raw = app.test_client()
    login(admin_raw, admin.email)
    for action in ("default", "delete", "holidays", "public-holidays"):
        response = admin_raw.post(
            f"/admin/calendars/{calendar.id}/{action}",
            data={"day": "2026-12-31", "country": "BD", "year": "2026"},
        )
        assert response.status_code == 400, action
    session.expire_all()
    kept = session.get(Calendar, calendar.id)
    assert kept is not None and not kept.is_default and kept.holidays == []
