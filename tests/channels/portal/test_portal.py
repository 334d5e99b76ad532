"""The portal end to end through the Flask client: KB pages, suggestions, votes and deflection,
magic links, My tickets, replies, close/reopen, and access control ("missing" and "not yours"
are the same 404)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.portal import magic
from channels.portal.models import PortalToken
from helpdesk.db import utcnow
from helpdesk.models import Agent, Message, Ticket, TicketStatus
from helpdesk.services import outbox, tickets
from kb import queries
from kb.models import Article
from tests.conftest import csrf_token

INTERNAL = ("refund-approval-checklist", "refund-approval-bn")


def submit(client: FlaskClient, **fields: object) -> object:
    data = {"csrf_token": csrf_token(client, "/portal/contact"), **fields}
    return client.post("/portal/contact", data=data, content_type="multipart/form-data")


def mails(app: Flask) -> list[object]:
    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    ]


def link_in(mail: object) -> str:
    body = mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    match = re.search(r"http://helpdesk\.test(/portal/m/\S+)", body)
    assert match, body
    return match.group(1)


def open_link(client: FlaskClient, path: str) -> object:
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    assert token
    return client.post(path, data={"csrf_token": token.group(1)})


def test_home_article_and_internal_articles_never_reach_customers(
    app: Flask, client: FlaskClient, session: Session, kb_articles: dict[str, Article]
) -> None:
    home = client.get("/portal/").get_data(as_text=True)
    assert "How to reset your password" in home
    for slug in INTERNAL:
        title = kb_articles[slug].title
        assert title not in home
        assert client.get(f"/portal/kb/{slug}").status_code == 404
        found = client.get("/api/v1/kb/search", query_string={"q": title}).get_json()
        assert slug not in [r["slug"] for r in found["results"]]
        results = client.get("/portal/search", query_string={"q": title}).text
        assert f"/portal/kb/{slug}" not in results
    assert client.get("/portal/kb/password-reset-whatsapp").status_code == 404  # a draft
    assert client.get("/portal/kb/no-such-article").status_code == 404
    page = client.get("/portal/kb/reset-password")
    assert page.status_code == 200 and "Was this helpful?" in page.text


def test_bengali_search_page_and_api(client: FlaskClient, kb_articles: dict[str, Article]) -> None:
    page = client.get(
        "/portal/search", query_string={"q": "পাসওয়ার্ডটি"}, headers={"Accept-Language": "bn"}
    )
    assert '<html lang="bn">' in page.text and "পাসওয়ার্ড রিসেট করার নিয়ম" in page.text
    typo = client.get("/portal/search", query_string={"q": "pasword reset"}).text
    assert "password reset" in typo
    bad = client.get("/api/v1/kb/search", query_string={"q": "x", "lang": "fr"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid"
    long = client.get("/api/v1/kb/search", query_string={"q": "x" * 301})
    assert long.status_code == 400 and long.get_json()["code"] == "too_long"


def test_votes_deflection_and_the_report(
    app: Flask,
    client: FlaskClient,
    session: Session,
    kb_articles: dict[str, Article],
    agent_client: object,
) -> None:
    article = kb_articles["reset-password"]
    token = csrf_token(client, "/portal/contact")
    # The contact form shows suggestions, the customer opens one, says it answered them.
    api = client.get(
        "/api/v1/kb/search", query_string={"q": "forgot password", "source": "contact"}
    ).get_json()
    assert api["results"][0]["slug"] in ("reset-password", "password-reset-bn")
    for kind in ("impression", "click", "view"):
        r = client.post(
            "/portal/events",
            data={"csrf_token": token, "kind": kind, "article_id": article.id, "source": "contact"},
        )
        assert r.status_code == 200
    r = client.post(f"/portal/kb/{article.slug}/answered", data={"csrf_token": token})
    assert r.status_code == 302
    r = client.post(
        f"/portal/kb/{article.slug}/vote",
        data={"csrf_token": token, "helpful": "no", "comment": "ধাপগুলো অস্পষ্ট"},
    )
    assert r.status_code == 302
    # Voting again changes the vote instead of adding one.
    client.post(f"/portal/kb/{article.slug}/vote", data={"csrf_token": token, "helpful": "yes"})
    session.refresh(article)
    assert (article.helpful_count, article.not_helpful_count, article.view_count) == (1, 0, 1)
    # Internal articles cannot be voted on or counted.
    internal = kb_articles["refund-approval-checklist"]
    assert (
        client.post(
            f"/portal/kb/{internal.slug}/vote", data={"csrf_token": token, "helpful": "yes"}
        ).status_code
        == 404
    )
    # A zero-result search, and a second visitor who submits a ticket (not deflected).
    session.commit()  # end the test's own transaction, as a finished request would
    client.get("/portal/search", query_string={"q": "warranty claim"})
    other = app.test_client()
    assert (
        submit(other, email="b@example.com", subject="Warranty", description="Broken").status_code
        == 200
    )  # type: ignore[attr-defined]
    session.expire_all()
    r = queries.report(session)
    assert r.deflections == 1 and r.tickets == 1 and r.deflection_rate == 0.5
    assert ("warranty claim", 1) in r.zero_results
    page = agent_client.get("/agent/kb/report").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "data-deflection-rate>50%<" in page and "warranty claim" in page and "<svg" in page
    assert client.get("/agent/kb/report").status_code == 302  # customers never see it


def test_contact_form_confirmation_magic_link_my_tickets_and_reply(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    r = submit(
        client,
        name="ফাতেমা",
        email="fatema@example.com",
        subject="বিকাশ পেমেন্ট",
        description="অর্ডার কনফার্ম হয়নি",
        attachments=(io.BytesIO(b"receipt"), "receipt.pdf"),
    )
    assert r.status_code == 200  # type: ignore[attr-defined]
    outbox.drain(app)
    sent = mails(app)
    assert len(sent) == 1 and sent[0]["To"].addresses[0].addr_spec == "fatema@example.com"  # type: ignore[index]
    path = link_in(sent[0])
    assert client.get("/portal/tickets").status_code == 302  # not signed in yet
    # GET does not use the link up (mail scanners prefetch); POST signs in.
    assert client.get(path).status_code == 200
    opened = open_link(client, path)
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/portal/tickets/1001")  # type: ignore[attr-defined]
    page = client.get("/portal/tickets/1001").get_data(as_text=True)
    assert "বিকাশ পেমেন্ট" in page and "receipt.pdf" in page
    # Reused link: rejected.
    other = app.test_client()
    assert other.get(path).status_code == 400
    # Reply with an attachment; it reaches the same ticket.
    token = csrf_token(client, "/portal/tickets/1001")
    r = client.post(
        "/portal/tickets/1001/reply",
        data={"csrf_token": token, "body": "আরও তথ্য", "attachments": (io.BytesIO(b"x"), "a.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    t = session.scalars(select(Ticket).where(Ticket.number == 1001)).one()
    assert t.message_count == 2
    # A bad attachment keeps the text and says why.
    r = client.post(
        "/portal/tickets/1001/reply",
        data={
            "csrf_token": token,
            "body": "my typed text",
            "attachments": (io.BytesIO(b"MZ"), "run.exe"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and "my typed text" in r.text and "run.exe" in r.text
    # Close and reopen through the ticket services.
    client.post("/portal/tickets/1001/status", data={"csrf_token": token, "action": "close"})
    session.refresh(t)
    assert t.status == TicketStatus.CLOSED
    client.post("/portal/tickets/1001/status", data={"csrf_token": token, "action": "reopen"})
    session.refresh(t)
    assert t.status == TicketStatus.OPEN
    # Customers never reach agent pages.
    assert client.get("/agent/queue").status_code == 404
    assert client.get("/api/ui/tickets/1001").status_code == 404


def test_agent_reply_notifies_with_a_link_and_internal_notes_stay_hidden(
    app: Flask, client: FlaskClient, session: Session, agent: Agent
) -> None:
    submit(client, email="rahim@example.com", subject="Late order", description="Where is it?")
    t = session.scalars(select(Ticket)).one()
    tickets.add_note(session, t, agent, "SECRET internal note")
    tickets.reply_to_ticket(session, t, agent, "It ships tomorrow.")
    session.commit()
    outbox.drain(app)
    reply = [m for m in mails(app) if "ships tomorrow" in m.get_body(("plain",)).get_content()]  # type: ignore[attr-defined]
    assert len(reply) == 1
    opened = open_link(client, link_in(reply[0]))
    assert opened.status_code == 302  # type: ignore[attr-defined]
    page = client.get(f"/portal/tickets/{t.number}").get_data(as_text=True)
    assert "It ships tomorrow." in page and "SECRET" not in page


def test_customer_a_cannot_reach_customer_b_by_any_url_or_link(
    app: Flask, session: Session, make_ticket: object
) -> None:
    a_client, b_client = app.test_client(), app.test_client()
    submit(a_client, email="a@example.com", subject="A's problem", description="private A")
    submit(b_client, email="b@example.com", subject="B's problem", description="private B")
    outbox.drain(app)
    links = {m["To"].addresses[0].addr_spec: link_in(m) for m in mails(app)}  # type: ignore[index]
    open_link(a_client, links["a@example.com"])
    b_ticket = session.scalars(select(Ticket).where(Ticket.subject == "B's problem")).one()
    token = csrf_token(a_client, "/portal/tickets")
    for method, url in [
        ("get", f"/portal/tickets/{b_ticket.number}"),
        ("get", "/portal/tickets/99999"),
        ("post", f"/portal/tickets/{b_ticket.number}/reply"),
        ("post", f"/portal/tickets/{b_ticket.number}/status"),
    ]:
        data = {"csrf_token": token, "body": "x", "action": "close"}
        r = getattr(a_client, method)(url, data=data) if method == "post" else a_client.get(url)
        assert r.status_code == 404, url
    assert "B&#39;s problem" not in a_client.get("/portal/tickets").text
    b_message = session.scalars(select(Message).where(Message.ticket_id == b_ticket.id)).first()
    assert b_message is not None


def test_forged_expired_and_wrong_purpose_tokens_are_rejected(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    submit(client, email="c@example.com", subject="Help", description="please")
    row = session.scalars(select(PortalToken)).one()
    good = magic.token_for(row)
    assert client.get(f"/portal/m/{good}x").status_code == 400  # forged
    assert client.get("/portal/m/not-a-token").status_code == 400
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    r = client.get(f"/portal/m/{good}")
    assert r.status_code == 400 and "expired" in r.text
    # A sign-in token's signature does not open as a ticket token (salted per purpose).
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer("wrong-secret", salt="helpdesk.portal.magic-link.ticket")
    assert client.get(f"/portal/m/{forged.dumps({'n': row.nonce})}").status_code == 400


def test_signin_by_link_and_optional_password(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    submit(client, email="d@example.com", subject="Help", description="please")
    outbox.drain(app)
    anon = app.test_client()
    token = csrf_token(anon, "/portal/signin")
    r = anon.post("/portal/signin", data={"csrf_token": token, "email": "nobody@example.com"})
    assert r.status_code == 200 and "If we know this address" in r.text
    r = anon.post("/portal/signin", data={"csrf_token": token, "email": "D@example.com"})
    assert r.status_code == 200
    outbox.drain(app)
    signin_mail = mails(app)[-1]
    assert "sign-in" in signin_mail["Subject"]  # type: ignore[index]
    open_link(anon, link_in(signin_mail))
    token = csrf_token(anon, "/portal/account")
    assert (
        anon.post("/portal/account", data={"csrf_token": token, "password": "short"}).status_code
        == 400
    )
    assert (
        anon.post(
            "/portal/account", data={"csrf_token": token, "password": "long enough pw"}
        ).status_code
        == 302
    )
    fresh = app.test_client()
    token = csrf_token(fresh, "/portal/signin")
    bad = fresh.post(
        "/portal/signin",
        data={"csrf_token": token, "email": "d@example.com", "password": "nope-nope"},
    )
    assert bad.status_code == 400
    ok = fresh.post(
        "/portal/signin",
        data={"csrf_token": token, "email": "d@example.com", "password": "long enough pw"},
    )
    assert ok.status_code == 302
    assert "Help" in fresh.get("/portal/tickets").text


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"ATTACHMENT_MAX_BYTES": 1024}


def test_attachment_limits_keep_what_was_typed(client: FlaskClient, session: Session) -> None:
    big = submit(
        client,
        email="e@example.com",
        subject="Big",
        description="my long story",
        attachments=(io.BytesIO(b"x" * 2048), "big.pdf"),
    )
    assert big.status_code == 400 and "my long story" in big.text and "big.pdf" in big.text  # type: ignore[attr-defined]
    assert session.scalars(select(Ticket)).first() is None
