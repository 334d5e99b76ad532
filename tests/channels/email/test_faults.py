"""Faults and hostile input through the whole ingest path: kill -9 mid-batch, malformed bytes,
and the CLI (secrets never printed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import Result
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email.ingest import process_mail
from channels.email.models import QuarantinedMail
from helpdesk.models import Channel, Message
from tests.channels.email.conftest import Mailbox, make_mail


def helpdesk_env(app: Flask) -> dict[str, str]:
    return {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": app.instance_path,
        "HELPDESK_DATABASE_URL": app.config["DATABASE_URL"],
        "HELPDESK_SECRET_KEY": app.config["SECRET_KEY"],
        "HELPDESK_MAIL_FROM": app.config["MAIL_FROM"],
        "HELPDESK_MAIL_FETCH_BATCH": "25",
    }


def helpdesk(app: Flask, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("helpdesk")
    return subprocess.run(
        [str(exe), *args], env=helpdesk_env(app), capture_output=True, text=True, timeout=120
    )


def test_kill_9_mid_batch_then_restart_stores_every_mail_exactly_once(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    assert helpdesk(app, "mail", "fetch", "--once").returncode == 0  # checkpoint at the start
    client = mailbox.client()
    for i in range(500):
        client.append("INBOX", make_mail(subject=f"Order {i}", message_id=f"m{i}@example.com"))
    client.logout()

    exe = Path(sys.executable).with_name("helpdesk")
    proc = subprocess.Popen(
        [str(exe), "mail", "fetch", "--once", "--verbose"],
        env=helpdesk_env(app),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first batch is committed: kill it mid-way
    assert line.startswith("batch committed"), line
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stderr.close()
    partial = int(session.scalar(select(func.count(Message.id))) or 0)
    session.commit()
    assert 25 <= partial < 500

    rerun = helpdesk(app, "mail", "fetch", "--once")
    assert rerun.returncode == 0, rerun.stderr
    ids = list(session.scalars(select(Message.message_id)))
    assert len(ids) == 500 and len(set(ids)) == 500


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    raw=st.one_of(
        st.binary(max_size=2000),
        st.builds(
            lambda head, body: head + b"\r\n\r\n" + body,
            st.sampled_from(
                [
                    b"From: a@b.c",
                    b"Subject: =?utf-8?B?broken",
                    b"From:",
                    b"Content-Type: multipart/mixed; boundary=x",
                    b"From: <>\r\nContent-Transfer-Encoding: base64",
                ]
            ),
            st.binary(max_size=1000),
        ),
    )
)
def test_malformed_bytes_are_stored_or_quarantined_never_raised(
    app: Flask, session: Session, channel: Channel, raw: bytes
) -> None:
    before = session.scalar(select(func.count(QuarantinedMail.id))) or 0
    result = process_mail(session, raw, channel)
    session.commit()
    after = session.scalar(select(func.count(QuarantinedMail.id))) or 0
    assert (result.message is not None) != (result.quarantined is not None)
    assert after == before + (1 if result.quarantined is not None else 0)


def cli(app: Flask, *args: str) -> Result:
    """The same commands in-process (each ``helpdesk`` process start costs seconds)."""
    return app.test_cli_runner().invoke(args=list(args))


def test_cli_add_list_fetch_and_replay_never_print_secrets(
    app: Flask, session: Session, mailbox: Mailbox
) -> None:
    added = cli(
        app, "channel", "add-email", "Support BD", "--address", "support@helpdesk.test",
        "--imap-host", mailbox.dovecot.host, "--imap-port", str(mailbox.dovecot.port),
        "--imap-user", mailbox.user, "--imap-password", mailbox.password,
        "--imap-security", "none", "--smtp-host", "127.0.0.1", "--smtp-port", "2525",
        "--smtp-user", "mailer", "--smtp-password", "smtp-secret-pw", "--smtp-security", "none",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    again = cli(
        app, "channel", "add-email", "Support BD", "--address", "x@helpdesk.test",
        "--imap-host", "h", "--imap-user", "u", "--imap-password", "p",
    )  # fmt: skip
    assert again.exit_code == 1 and "already exists" in again.output

    mailbox.append(b"garbage without headers\r\n")
    fetched = cli(app, "mail", "fetch", "--once", "--since", "2000-01-01")
    assert fetched.exit_code == 0, fetched.output
    assert "1 quarantined" in fetched.output

    listed = cli(app, "channel", "list", "--json")
    [row] = json.loads(listed.stdout)
    assert row["status"] == "ok" and row["last_uid"] == 1 and row["last_success_at"]
    assert row["settings"]["imap"]["password"] is True
    stored = session.scalar(select(Channel.settings))
    session.commit()
    everything = listed.output + added.output + added.output + fetched.output + fetched.output
    for secret in (mailbox.password, "smtp-secret-pw"):
        assert secret not in everything
        assert secret not in json.dumps(stored)  # encrypted at rest

    [item] = json.loads(cli(app, "mail", "quarantine", "list", "--json").stdout)
    session.commit()  # in-process, the command read through this test's session
    assert "no mail header fields" in item["error"]
    replay = cli(app, "mail", "quarantine", "replay", str(item["id"]))
    assert replay.exit_code == 1 and "Still cannot process" in replay.output
    missing = cli(app, "mail", "quarantine", "replay", "9999")
    assert missing.exit_code == 1 and "not found" in missing.output
    bad_date = cli(app, "mail", "fetch", "--once", "--since", "yesterday")
    assert bad_date.exit_code == 2
