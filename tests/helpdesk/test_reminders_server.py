"""A reminder through a real `helpdesk serve` process and a real SMTP server: the server is
killed with -9 a few seconds before the reminder is due, stays down past its time, restarts,
and the reminder fires on start exactly once (one mail, one notification)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, Notification, OutboundMail, Task
from helpdesk.services import tasks
from tests.channels.chat.servers import ChatSite
from tests.servers import SmtpSink


@pytest.fixture
def site(
    request: pytest.FixtureRequest, db_backend: str, tmp_path: Path, smtp_sink: SmtpSink
) -> Iterator[ChatSite]:
    env = {"HELPDESK_SMTP_HOST": smtp_sink.host, "HELPDESK_SMTP_PORT": str(smtp_sink.port)}
    with ChatSite.on(request, db_backend, tmp_path / "site", extra_env=env) as s:
        yield s


def count(site: ChatSite, model: type[object]) -> int:
    return int(site.run(lambda s: s.scalar(select(func.count()).select_from(model)) or 0))


@pytest.mark.slow
def test_a_reminder_due_while_the_server_was_killed_fires_once_after_the_restart(
    site: ChatSite, smtp_sink: SmtpSink
) -> None:
    agent = site.agent("Tanvir Hasan")
    server = site.serve()

    def add(s: Session) -> tuple[int, float]:
        assignee = s.get(Agent, agent.id)
        due = utcnow() + timedelta(seconds=4)
        task = tasks.create_task(
            s, assignee, title="Call Rahim back", due_at=due, remind_at=due, assignee=assignee
        )
        s.flush()
        return task.id, due.timestamp()

    task_id, due = site.run(add)
    server.kill()  # before the reminder's time: no shutdown code runs
    assert site.run(lambda s: s.get(Task, task_id).next_fire_at) is not None
    assert count(site, Notification) == 0
    # Down past the reminder's time (the clock is what the test waits for here).
    time.sleep(max(0.0, due - time.time()) + 1.0)
    assert smtp_sink.messages == []

    server = site.serve()
    (mail,) = smtp_sink.wait_for(1, timeout=30)
    assert mail.rcpt_tos == (agent.email,)
    assert b"Call Rahim back" in mail.data
    server.stop()  # a graceful stop: nothing in flight is left to send
    assert len(smtp_sink.messages) == 1
    assert count(site, Notification) == 1
    assert count(site, OutboundMail) == 1
    assert site.run(lambda s: s.get(Task, task_id).next_fire_at) is None

    # Another start finds nothing due: still one mail.
    server = site.serve()
    server.stop()
    assert len(smtp_sink.messages) == 1 and count(site, Notification) == 1
