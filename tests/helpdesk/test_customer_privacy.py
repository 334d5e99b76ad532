"""A customer's data-protection requests: an admin downloads everything about one customer (a zip
of JSON and attachments) and erases them (messages redacted, attachments deleted from disk,
identities removed, an audit line naming the admin); agents get 403."""

from __future__ import annotations

import io
import json
import zipfile

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.inbound import InboundAttachment
from helpdesk.models import (
    Agent,
    AgentRole,
    Attachment,
    AuditEvent,
    Customer,
    CustomerIdentity,
    Message,
    Task,
)
from helpdesk.services import attachments, customers, search, stream, tasks
from helpdesk.services.agents import create_agent
from tests.conftest import PASSWORD, AgentClient, MakeTicket, bn, login

PDF = b"%PDF-1.4 invoice of Rahim"
SHARED = b"the same logo in everyone's mail"


def _admin_client(app: Flask, admin: Agent) -> AgentClient:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return AgentClient(client)


def _setup(make_ticket: MakeTicket, session: Session) -> Customer:
    make_ticket(
        sender="rahim@example.com",
        subject="চালান নিয়ে প্রশ্ন",
        text="আমার ঠিকানা: ১২ মিরপুর রোড",
        sender_name="রহিম উদ্দিন",
        attachments=[
            InboundAttachment("invoice.pdf", "application/pdf", PDF),
            InboundAttachment("logo.png", "image/png", SHARED),
        ],
    )
    make_ticket(
        sender="other@example.com",
        subject="Other person",
        attachments=[InboundAttachment("logo.png", "image/png", SHARED)],
    )
    rahim = customers.find_by_identity(session, "email", "rahim@example.com")  # type: ignore[arg-type]
    assert rahim is not None
    return rahim


def test_export_everything_about_one_customer(
    app: Flask, admin: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    rahim = _setup(make_ticket, session)
    client = _admin_client(app, admin)
    page = client.get(f"/agent/customers/{rahim.id}").get_data(as_text=True)
    assert "Download everything about this customer (zip)" in page
    response = client.post(f"/agent/customers/{rahim.id}/data-export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    document = json.loads(archive.read("customer.json"))
    assert document["customer"]["name"] == "রহিম উদ্দিন"
    assert document["customer"]["identities"][0]["value"] == "rahim@example.com"
    assert document["exported_by"] == admin.email
    [ticket] = document["tickets"]
    assert ticket["subject"] == "চালান নিয়ে প্রশ্ন"
    [message] = ticket["messages"]
    assert "১২ মিরপুর রোড" in message["text"]
    files = {a["filename"]: a["file"] for a in message["attachments"]}
    assert archive.read(files["invoice.pdf"]) == PDF
    assert "Other person" not in json.dumps(document)  # only this customer's data
    session.expire_all()
    logged = session.scalar(select(AuditEvent).where(AuditEvent.action == "customer.exported"))
    assert logged is not None and logged.actor_agent_id == admin.id


def test_erase_redacts_removes_and_keeps_the_audit(
    app: Flask, admin: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    rahim = _setup(make_ticket, session)
    rahim_id = rahim.id
    tasks.create_task(
        session, admin, title="Call Rahim back", due_at=utcnow(), assignee=admin, customer=rahim
    )
    session.commit()
    pdf_path = attachments.path_for(attachments.store_bytes(PDF))
    shared_path = attachments.path_for(attachments.store_bytes(SHARED))
    assert pdf_path.exists() and shared_path.exists()
    client = _admin_client(app, admin)

    assert search.search_tickets(session, "মিরপুর").hits  # indexed before
    session.rollback()
    confirm = client.get(f"/agent/customers/{rahim_id}/erase").get_data(as_text=True)
    assert "rahim@example.com" in confirm and "cannot be undone" in confirm
    wrong = client.post(f"/agent/customers/{rahim_id}/erase", {"confirm": "yes"})
    assert wrong.status_code == 400
    session.expire_all()
    assert customers.find_by_identity(session, "email", "rahim@example.com") is not None  # type: ignore[arg-type]

    done = client.post(f"/agent/customers/{rahim_id}/erase", {"confirm": "RAHIM@example.com"})
    assert done.status_code == 302
    session.expire_all()
    erased = session.get(Customer, rahim_id)
    assert erased is not None and erased.name == "" and erased.email is None
    assert (
        session.scalar(
            select(func.count())
            .select_from(CustomerIdentity)
            .where(CustomerIdentity.customer_id == rahim_id)
        )
        == 0
    )
    texts = list(
        session.scalars(erased.tickets[0].messages.select().with_only_columns(Message.body_text))
    )
    assert texts and all(t == "[erased]" for t in texts)
    assert erased.tickets[0].subject == "[erased]"
    assert "১২ মিরপুর রোড" not in json.dumps(
        [m.body_html or "" for m in session.scalars(select(Message))]
    )
    # The ticket search index forgot the words too (by text and by the customer's name).
    assert not search.search_tickets(session, "মিরপুর").hits
    assert not search.search_tickets(session, "রহিম").hits
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Task)) == 0  # "Call Rahim back"
    # The invoice is gone from disk; the logo stays, another customer's mail has it too.
    assert not pdf_path.exists() and shared_path.exists()
    names = set(session.scalars(select(Attachment.filename)))
    assert names == {"logo.png"}
    logged = session.scalar(select(AuditEvent).where(AuditEvent.action == "customer.erased"))
    assert logged is not None and logged.actor_agent_id == admin.id
    assert logged.data["customer_id"] == rahim_id and logged.data["attachments"] == 2
    events = [e for e in stream.read(session, limit=1000) if e.subject_id == rahim_id]
    assert "customer.erased" in [e.name for e in events]
    created = next(e for e in events if e.name == "customer.created")
    assert "rahim" not in json.dumps(created.data, ensure_ascii=False)
    # The agents' page says what happened, naming the admin.
    page = client.get(f"/agent/customers/{rahim_id}").get_data(as_text=True)
    assert "The customer was erased." in page and "রহিম" not in page
    # Writing again makes a new customer; nothing links back to the erased record.
    make_ticket(sender="rahim@example.com", subject="Back again")
    again = customers.find_by_identity(session, "email", "rahim@example.com")  # type: ignore[arg-type]
    assert again is not None and again.id != rahim_id


def test_agents_cannot_export_or_erase(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    rahim = _setup(make_ticket, session)
    page = agent_client.get(f"/agent/customers/{rahim.id}").get_data(as_text=True)
    assert "Download everything" not in page
    assert agent_client.post(f"/agent/customers/{rahim.id}/data-export").status_code == 403
    assert agent_client.get(f"/agent/customers/{rahim.id}/erase").status_code == 403
    refused = agent_client.post(
        f"/agent/customers/{rahim.id}/erase", {"confirm": "rahim@example.com"}
    )
    assert refused.status_code == 403
    session.expire_all()
    assert customers.find_by_identity(session, "email", "rahim@example.com") is not None  # type: ignore[arg-type]


def test_the_confirmation_page_in_bengali(
    app: Flask, admin: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    rahim = _setup(make_ticket, session)
    nusrat = create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.ADMIN, "bn")
    session.commit()
    client = _admin_client(app, nusrat)
    page = client.get(f"/agent/customers/{rahim.id}").get_data(as_text=True)
    assert bn("Download everything about this customer (zip)") in page
    confirm = client.get(f"/agent/customers/{rahim.id}/erase").get_data(as_text=True)
    assert bn("Erase this customer") in confirm and bn("Erase") in confirm
    wrong = client.post(f"/agent/customers/{rahim.id}/erase", {"confirm": "x"})
    assert bn("Type %(what)s exactly to confirm.") % {
        "what": "rahim@example.com"
    } in wrong.get_data(as_text=True)


def test_custom_fields_are_exported_and_the_persons_words_erased(
    admin: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    """The zip has the customer's and their tickets' custom values; erasing clears the
    customer's and the tickets' free text (choices stay for reports) and the rating's comment,
    keeping its score (the agent's)."""
    from helpdesk.models import SatisfactionRating, Ticket, TicketStatus
    from helpdesk.services import custom_fields, customer_privacy, satisfaction, tickets

    for key, kind, obj in (
        ("address", "text", "customer"),
        ("delivery_note", "long_text", "ticket"),
        ("product", "dropdown", "ticket"),
    ):
        custom_fields.define_field(
            session, admin, object_type=obj, key=key, type=kind, label_en=key,
            options=["phone", "laptop"],
        )  # fmt: skip
    rahim = _setup(make_ticket, session)
    ticket = session.scalars(select(Ticket).where(Ticket.customer_id == rahim.id)).first()
    assert ticket is not None
    custom_fields.set_values(session, rahim, {"address": "১২ মিরপুর রোড"}, admin)
    custom_fields.set_values(
        session, ticket, {"delivery_note": "বাড়ির পেছনের দরজা", "product": "phone"}, admin
    )
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, admin)
    session.flush()
    survey = satisfaction.request_survey(session, ticket, mail=False)
    assert survey is not None
    satisfaction.rate(session, survey, "good", "রহিম খুশি", channel="email")
    session.commit()

    archive = zipfile.ZipFile(io.BytesIO(customer_privacy.export_customer(session, rahim, admin)))
    document = json.loads(archive.read("customer.json"))
    assert document["customer"]["custom"] == {"address": "১২ মিরপুর রোড"}
    assert {"delivery_note": "বাড়ির পেছনের দরজা", "product": "phone"} in [
        t["custom"] for t in document["tickets"]
    ]

    customer_privacy.erase_customer(session, rahim, admin)
    session.commit()
    session.expire_all()
    assert session.get(Customer, rahim.id).custom is None  # type: ignore[union-attr]
    assert session.get(Ticket, ticket.id).custom == {"product": "phone"}  # type: ignore[union-attr]
    rating = session.get(SatisfactionRating, survey.id)
    assert rating is not None and rating.score == satisfaction.GOOD and rating.comment == ""
