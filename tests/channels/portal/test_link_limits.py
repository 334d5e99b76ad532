"""Nobody can lock a customer out of their sign-in by asking for links for their address, and
nobody can flood their inbox: requests are limited per requester, mails per inbox."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models.outbound import OutboundMail
from helpdesk.services import outbox
from tests.channels.portal.test_portal import link_in, mails, open_link, submit
from tests.conftest import csrf_token


def ask_link(app: Flask, address: str, ip: str) -> int:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    token = csrf_token(client, "/portal/signin")
    return client.post("/portal/signin", data={"csrf_token": token, "email": address}).status_code


def test_an_attacker_cannot_block_a_customers_sign_in(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    submit(client, email="d@example.com", subject="Help", description="please")
    outbox.drain(app)
    assert len(mails(app)) == 1  # the new ticket's confirmation

    # Someone else asks for the customer's link again and again, until refused.
    answers = [ask_link(app, "d@example.com", "203.0.113.66") for _ in range(6)]
    assert answers == [200] * 5 + [429]
    # Refused per requester: the same requester for another address is not (counted apart).
    assert ask_link(app, "e@example.com", "203.0.113.66") == 200

    # The customer, from their own address, is answered as usual ...
    assert ask_link(app, "d@example.com", "198.51.100.7") == 200
    outbox.drain(app)
    # ... and their inbox got at most five link mails this hour, every one of which works.
    inbox = mails(app)
    assert len(inbox) == 5
    customer = app.test_client()
    open_link(customer, link_in(inbox[-1]))
    assert "Help" in customer.get("/portal/tickets").get_data(as_text=True)

    # An hour later the customer gets a new mail when they ask.
    for row in session.scalars(select(OutboundMail)):
        row.created_at -= timedelta(minutes=61)
    session.commit()
    assert ask_link(app, "d@example.com", "198.51.100.7") == 200
    outbox.drain(app)
    assert len(mails(app)) == 6
