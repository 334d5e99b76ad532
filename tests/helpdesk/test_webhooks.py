"""Webhooks against a real HTTP receiver: signatures checked by the receiver's own HMAC code, the
body's shape, order per ticket, the retry schedule and auto-disable on a controllable clock,
and the request-forgery rules."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import (
    Agent,
    AgentRole,
    DeliveryState,
    OutboundMail,
    Ticket,
    TicketStatus,
    Webhook,
    WebhookDelivery,
)
from helpdesk.services import (
    outbox,
    stream,
    tickets,
    webhook_delivery,
    webhook_fanout,
    webhook_service,
    webhooks,
)
from helpdesk.services.agents import create_agent
from helpdesk.services.errors import Forbidden, ServiceError
from tests.conftest import PASSWORD, MakeTicket, bn
from tests.helpdesk.webhook_receiver import Received, Receiver, pump, signature_ok


class Clock:
    """The webhook engine's "now", moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)

    def to(self, when: datetime) -> None:
        self.now = max(self.now, when)


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_HOSTS": receiver.host}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    for module in (webhooks, webhook_fanout, webhook_delivery, webhook_service):
        monkeypatch.setattr(module, "utcnow", c)
    return c


def hook(
    session: Session, admin: Agent, url: str, events: list[str] | None = None
) -> tuple[Webhook, str]:
    webhook, secret = webhooks.create_webhook(
        session, admin, url, events or ["ticket.created", "ticket.updated"]
    )
    session.commit()
    return webhook, secret


def rows(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_new_ticket_is_posted_signed_with_the_ticket_as_the_api_returns_it(
    app: Flask, session: Session, admin: Agent, receiver: Receiver, make_ticket: MakeTicket
) -> None:
    webhook, secret = hook(session, admin, receiver.url)
    assert secret.startswith("whsec_")
    ticket = make_ticket(sender="rahim@example.com", subject="Refund for order 7").ticket
    assert pump(app) == 1
    (request,) = receiver.wait_for(1)
    assert signature_ok(secret, request.headers, request.body)
    assert not signature_ok("whsec_other", request.headers, request.body)
    assert abs(int(request.headers["X-Helpdesk-Timestamp"]) - time.time()) < 60
    body = request.json
    assert set(body) >= {"id", "event", "created_at", "data"}
    assert body["event"] == "ticket.created" == request.headers["X-Helpdesk-Event"]
    event = stream.read(session, 0, names=["ticket.created"])[-1]
    assert body["id"] == event.id
    assert datetime.fromisoformat(body["created_at"]) == event.occurred_at
    assert body["data"]["number"] == ticket.number
    assert body["data"]["subject"] == "Refund for order 7"
    assert body["data"]["customer"]["email"] == "rahim@example.com"
    (row,) = rows(session)
    assert request.headers["X-Helpdesk-Delivery"] == str(row.id)
    assert (row.state, row.attempts, row.response_code) == (DeliveryState.DELIVERED, 1, 200)
    assert row.latency_ms is not None and row.response_excerpt == "ok"
    assert row.webhook_id == webhook.id


def test_only_subscribed_events_after_registration_are_delivered(
    app: Flask,
    session: Session,
    admin: Agent,
    agent: Agent,
    receiver: Receiver,
    make_ticket: MakeTicket,
) -> None:
    before = make_ticket(subject="Before the webhook").ticket
    hook(session, admin, receiver.url, ["ticket.updated"])
    t = make_ticket(subject="After").ticket  # ticket.created: not subscribed
    tickets.set_status(session, t, TicketStatus.PENDING, agent)
    session.commit()
    assert pump(app) == 1
    (request,) = receiver.wait_for(1)
    body = request.json
    assert body["event"] == "ticket.updated"
    assert body["data"]["number"] == t.number != before.number
    assert body["details"]["changes"]["status"] == {"from": "new", "to": "pending"}


def test_a_failing_ticket_holds_back_its_own_later_events_but_no_other_tickets(
    app: Flask,
    session: Session,
    admin: Agent,
    agent: Agent,
    receiver: Receiver,
    make_ticket: MakeTicket,
    clock: Clock,
) -> None:
    hook(session, admin, receiver.url)
    a = make_ticket(subject="Ticket A").ticket
    b = make_ticket(subject="Ticket B").ticket
    for status in (TicketStatus.OPEN, TicketStatus.PENDING):
        tickets.set_status(session, session.get(Ticket, a.id), status, agent)  # type: ignore[arg-type]
        tickets.set_status(session, session.get(Ticket, b.id), status, agent)  # type: ignore[arg-type]
        session.commit()

    def down_for_a(request: Received) -> tuple[int, dict[str, str], bytes]:
        return (503, {}, b"busy") if request.json["data"]["id"] == a.id else (200, {}, b"ok")

    receiver.responder = down_for_a
    pump(app)
    # B's three events arrived in order; A's first failed and its later two never left.
    got = [(r.json["data"]["id"], r.json["event"]) for r in receiver.requests]
    assert [e for t, e in got if t == b.id] == [
        "ticket.created",
        "ticket.updated",
        "ticket.updated",
    ]
    assert [e for t, e in got if t == a.id] == ["ticket.created"]
    states = [
        (d.ordering_key, d.state, d.attempts)
        for d in rows(session)
        if d.ordering_key == f"ticket:{a.id}"
    ]
    assert states == [
        (f"ticket:{a.id}", DeliveryState.PENDING, 1),
        (f"ticket:{a.id}", DeliveryState.PENDING, 0),
        (f"ticket:{a.id}", DeliveryState.PENDING, 0),
    ]
    assert pump(app) == 0  # nothing due before the backoff has passed
    receiver.responder = lambda _r: (200, {}, b"ok")
    clock.advance(seconds=13)  # the first retry: 10 s with at most 20% jitter
    assert pump(app) == 3
    a_events = [r.json for r in receiver.requests if r.json["data"]["id"] == a.id]
    assert [e["event"] for e in a_events] == [
        "ticket.created",
        "ticket.created",
        "ticket.updated",
        "ticket.updated",
    ]
    assert [e["id"] for e in a_events[1:]] == sorted(e["id"] for e in a_events[1:])


def test_retries_back_off_exponentially_with_jitter_for_24_hours_then_give_up(
    app: Flask,
    session: Session,
    admin: Agent,
    agent: Agent,
    receiver: Receiver,
    make_ticket: MakeTicket,
    clock: Clock,
) -> None:
    app.config["WEBHOOK_DISABLE_AFTER_FAILURES"] = 10_000  # this test watches one delivery
    hook(session, admin, receiver.url)
    t = make_ticket().ticket
    tickets.set_status(session, t, TicketStatus.PENDING, agent)
    session.commit()
    receiver.responder = lambda _r: (500, {}, b"down")
    start = clock.now
    pump(app)
    waits: list[float] = []
    while True:
        first = rows(session)[0]
        if first.state is DeliveryState.DEAD:
            break
        assert first.state is DeliveryState.PENDING
        waits.append((first.next_attempt_at - clock.now).total_seconds())
        clock.to(first.next_attempt_at)
        pump(app)
    # 10 s doubling (each within ±20%) up to the hourly cap, until 24 hours have passed.
    for n, wait in enumerate(waits[:8]):
        assert 10 * 2**n * 0.8 <= wait <= 10 * 2**n * 1.2, (n, wait)
    assert all(wait <= 3600 * 1.2 for wait in waits)
    assert max(waits) > 3600 * 0.8
    assert len(set(waits[:8])) == 8  # jittered, not a fixed schedule
    dead = rows(session)[0]
    assert clock.now - start >= timedelta(hours=24)
    assert (
        dead.attempts
        == len(waits) + 1
        == len([r for r in receiver.requests if r.json["event"] == "ticket.created"])
    )
    assert dead.error == "HTTP 500" and dead.response_code == 500
    # Given up: the ticket's next event goes on (and fails in its turn).
    second = rows(session)[1]
    assert second.attempts == 1 and second.state is DeliveryState.PENDING


def test_a_run_of_failures_disables_the_webhook_and_mails_the_admins(
    app: Flask,
    session: Session,
    admin: Agent,
    receiver: Receiver,
    make_ticket: MakeTicket,
    clock: Clock,
) -> None:
    app.config.update(WEBHOOK_DISABLE_AFTER_FAILURES=4, WEBHOOK_DISABLE_AFTER_HOURS=1)
    nusrat = create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.ADMIN, "bn")
    create_agent(session, "alex@example.com", "Alex", PASSWORD, AgentRole.AGENT)
    session.commit()
    webhook, _secret = hook(session, admin, receiver.url)
    for n in range(3):
        make_ticket(subject=f"Order {n}")
    receiver.responder = lambda _r: (502, {}, b"bad gateway")
    pump(app)  # three tickets, three failures in a second: an outage, not a dead receiver
    session.refresh(webhook)
    assert webhook.active and webhook.consecutive_failures == 3
    while webhook.active:
        clock.to(min(d.next_attempt_at for d in rows(session) if d.state is DeliveryState.PENDING))
        pump(app)
        session.refresh(webhook)
    assert webhook.consecutive_failures >= 4
    assert clock.now - (webhook.failing_since or clock.now) >= timedelta(hours=1)
    assert webhook.disabled_reason == "failures"
    mails = session.scalars(select(OutboundMail).order_by(OutboundMail.recipient)).all()
    assert [(m.purpose, m.recipient) for m in mails] == [
        ("webhook.disabled", "admin@example.com"),
        ("webhook.disabled", "nusrat@example.com"),
    ]
    # Disabled: nothing more is sent, new events queue no deliveries.
    sent = len(receiver.requests)
    clock.advance(hours=2)
    make_ticket(subject="While disabled")
    pump(app)
    assert len(receiver.requests) == sent
    # The mails, as the outbox composes them (no SMTP here: .eml files), each in its language.
    outbox.drain(app)
    files = sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    texts = [f.read_bytes().decode("utf-8", "replace") for f in files]
    assert len(texts) == 2
    assert all(receiver.url in _mail_text(t) for t in texts)
    assert {_header(t, "Subject") for t in texts} == {
        "A webhook was disabled after repeated failures",
        bn("A webhook was disabled after repeated failures"),
    }
    # Enabled again, the receiver back: what was pending goes out.
    receiver.responder = lambda _r: (200, {}, b"ok")
    webhooks.set_active(session, admin, session.get(Webhook, webhook.id), True)  # type: ignore[arg-type]
    session.commit()
    pump(app)
    assert {d.state for d in rows(session)} == {DeliveryState.DELIVERED}
    assert nusrat.id


def _header(raw: str, name: str) -> str:
    from email import message_from_string, policy

    return str(message_from_string(raw, policy=policy.default)[name])


def _mail_text(raw: str) -> str:
    from email import message_from_string, policy

    mail = message_from_string(raw, policy=policy.default)
    part = mail.get_body(("plain",))  # type: ignore[attr-defined]
    return str(part.get_content()) if part is not None else raw


def test_redeliver_sends_the_same_body_again_as_a_new_delivery(
    app: Flask, session: Session, admin: Agent, receiver: Receiver, make_ticket: MakeTicket
) -> None:
    webhook, secret = hook(session, admin, receiver.url)
    make_ticket()
    pump(app)
    (first,) = rows(session)
    again = webhooks.redeliver(session, admin, first)
    session.commit()
    pump(app)
    one, two = receiver.wait_for(2)
    assert one.body == two.body and signature_ok(secret, two.headers, two.body)
    assert two.headers["X-Helpdesk-Delivery"] == str(again.id) != one.headers["X-Helpdesk-Delivery"]
    page, cursor = webhooks.deliveries(session, admin, webhook, limit=1)
    assert [d.id for d in page] == [again.id] and cursor == again.id
    older, cursor = webhooks.deliveries(session, admin, webhook, before=cursor, limit=1)
    assert [d.id for d in older] == [first.id] and cursor is None


def test_only_admins_manage_webhooks(session: Session, agent: Agent, receiver: Receiver) -> None:
    with pytest.raises(Forbidden):
        webhooks.create_webhook(session, agent, receiver.url, ["ticket.created"])


@pytest.mark.parametrize("events", [[], ["ticket.exploded"]])
def test_events_must_be_known(
    session: Session, admin: Agent, receiver: Receiver, events: list[str]
) -> None:
    with pytest.raises(ServiceError):
        webhooks.create_webhook(session, admin, receiver.url, events)


# --- request forgery ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://0.0.0.0:{port}/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(
    app: Flask, session: Session, admin: Agent, receiver: Receiver, url: str
) -> None:
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ""
    with pytest.raises(ServiceError):
        webhooks.create_webhook(session, admin, url.format(port=receiver.port), ["ticket.created"])


def test_allowed_hosts_lists_host_or_host_and_port(
    app: Flask, session: Session, admin: Agent, receiver: Receiver
) -> None:
    app.config["WEBHOOK_ALLOWED_HOSTS"] = f"hooks.internal, 127.0.0.1:{receiver.port + 1}"
    with pytest.raises(ServiceError):  # another port of the same host is not listed
        webhooks.create_webhook(session, admin, receiver.url, ["ticket.created"])
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    webhooks.create_webhook(session, admin, receiver.url, ["ticket.created"])
    app.config["WEBHOOK_ALLOWED_HOSTS"] = f"[::1]:{receiver.port}, example.org"
    webhooks.create_webhook(session, admin, f"http://[::1]:{receiver.port}/", ["ticket.created"])


def test_the_address_is_checked_again_at_delivery(
    app: Flask, session: Session, admin: Agent, receiver: Receiver, make_ticket: MakeTicket
) -> None:
    hook(session, admin, receiver.url)
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ""  # no longer allowed (or the name now points inside)
    make_ticket()
    pump(app)
    (row,) = rows(session)
    assert row.state is DeliveryState.PENDING and row.response_code is None
    assert "HELPDESK_WEBHOOK_ALLOWED_HOSTS" in (row.error or "")
    assert receiver.requests == []


def test_redirects_are_not_followed_and_answers_are_capped(
    app: Flask, session: Session, admin: Agent, receiver: Receiver, make_ticket: MakeTicket
) -> None:
    elsewhere = Receiver().start()
    try:
        app.config["WEBHOOK_ALLOWED_HOSTS"] = f"{receiver.host},{elsewhere.host}"
        hook(session, admin, receiver.url)
        receiver.responder = lambda _r: (302, {"Location": elsewhere.url}, b"")
        make_ticket()
        pump(app)
        (row,) = rows(session)
        assert (row.state, row.response_code, row.error) == (DeliveryState.PENDING, 302, "HTTP 302")
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()
    app.config["WEBHOOK_RESPONSE_MAX_BYTES"] = 1000
    receiver.responder = lambda _r: (200, {}, b"x" * 5_000_000)
    make_ticket()
    pump(app)
    last = rows(session)[-1]
    assert last.state is DeliveryState.DELIVERED
    assert last.response_excerpt == "x" * 1000


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    app: Flask, session: Session, admin: Agent, receiver: Receiver, make_ticket: MakeTicket
) -> None:
    app.config["WEBHOOK_READ_TIMEOUT"] = 0.3

    def slow(_r: Received) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.0)  # the receiver's own slowness
        return 200, {}, b"late"

    hook(session, admin, receiver.url)
    receiver.responder = slow
    make_ticket()
    pump(app)
    (row,) = rows(session)
    assert row.state is DeliveryState.PENDING and "timed out" in (row.error or "")
    assert row.latency_ms is not None and row.latency_ms < 1000  # gave up before the answer


def test_the_body_is_json_with_the_event_data_when_no_serializer_is_registered(
    app: Flask,
    session: Session,
    admin: Agent,
    agent: Agent,
    receiver: Receiver,
    make_ticket: MakeTicket,
) -> None:
    hook(session, admin, receiver.url, ["message.created"])
    t = make_ticket().ticket
    tickets.add_note(session, t, agent, "Checked the order.")
    session.commit()
    pump(app)
    mail, note = receiver.wait_for(2)
    assert json.loads(mail.body)["data"]["internal"] is False
    data = json.loads(note.body)["data"]
    assert data["type"] == "message" and data["internal"] is True
    assert data["ticket"] == {"id": t.id, "number": t.number}


def test_https_checks_the_certificate_against_the_url_host(
    app: Flask, session: Session, admin: Agent, make_ticket: MakeTicket, tmp_path: Path
) -> None:
    """The address is pinned, but TLS still verifies the certificate for the URL's host name:
    a receiver whose certificate nobody vouches for gets nothing."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls = Receiver().start()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert tls._server is not None
    tls._server.socket = context.wrap_socket(tls._server.socket, server_side=True)
    try:
        app.config["WEBHOOK_ALLOWED_HOSTS"] = f"localhost:{tls.port}"
        hook(session, admin, f"https://localhost:{tls.port}/hook")
        make_ticket()
        pump(app)
        (row,) = rows(session)
        assert row.state is DeliveryState.PENDING and row.response_code is None
        assert "CERTIFICATE_VERIFY_FAILED" in (row.error or "")
        assert tls.requests == []
    finally:
        tls.stop()
