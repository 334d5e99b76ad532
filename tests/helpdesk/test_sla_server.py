"""An SLA breach through a real `helpdesk serve` process: the server is killed with -9 before
a first-response target is due, stays down past it, restarts, and the breach fires on start
exactly once (one ``sla.breached`` event), also across a further restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Event, Ticket
from helpdesk.services import sla, tickets
from helpdesk.services.customers import resolve_customer
from tests.channels.chat.servers import ChatSite


@pytest.fixture
def site(request: pytest.FixtureRequest, db_backend: str, tmp_path: Path) -> Iterator[ChatSite]:
    with ChatSite.on(request, db_backend, tmp_path / "site") as s:
        yield s


def breaches(site: ChatSite, ticket_id: int) -> int:
    return len(
        site.run(
            lambda s: list(
                s.scalars(
                    select(Event.id).where(
                        Event.name == "sla.breached", Event.ticket_id == ticket_id
                    )
                )
            )
        )
    )


@pytest.mark.slow
def test_a_breach_due_while_the_server_was_killed_fires_once_after_the_restart(
    site: ChatSite,
) -> None:
    server = site.serve()

    def add(s: Session) -> tuple[int, float]:
        sla.create_policy(
            s,
            None,
            name="One minute",
            targets={"normal": {"first_response_minutes": 1}},
            business_hours=False,
            warning_minutes=0,
        )
        s.flush()
        sla.forget()
        customer = resolve_customer(s, "email", "rahim@example.com", name="রহিম")
        # Opened 57 seconds ago: the one-minute target is due in about three seconds.
        ticket = tickets.open_ticket(
            s,
            customer=customer,
            subject="Parcel missing",
            channel="email",
            created_at=utcnow() - timedelta(seconds=57),
            actor=customer,
        )
        return ticket.id, 0.0

    ticket_id, _ = site.run(add)
    due = site.run(lambda s: s.get(Ticket, ticket_id).first_response_due_at)
    assert due is not None
    server.kill()  # before the target's time: no shutdown code runs
    # Down past the due time (the clock is what the test waits for here).
    time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 1.0)
    assert breaches(site, ticket_id) == 0

    server = site.serve()
    deadline = time.monotonic() + 30
    while breaches(site, ticket_id) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    server.stop()
    assert breaches(site, ticket_id) == 1
    assert site.run(lambda s: s.get(Ticket, ticket_id).sla_timer_at) is None

    # Another start finds nothing due: still one breach.
    server = site.serve()
    server.stop()
    assert breaches(site, ticket_id) == 1
