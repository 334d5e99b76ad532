"""Ticket search: Bengali and English, consistent after every commit, filters, page, API, CLI."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.models import Agent, Customer, Message, Ticket, TicketStatus
from helpdesk.models.search import TABLE
from helpdesk.services import search as search_service
from helpdesk.services import ticket_merge, tickets
from helpdesk.services.customers import merge_customers, update_customer
from helpdesk.services.errors import ServiceError
from helpdesk.services.search import SearchFilter, SearchResults, search_tickets
from tests.conftest import AgentClient, MakeTicket


def numbers(results: SearchResults) -> list[int]:
    return [h.ticket.number for h in results.hits]


def find(session: Session, query: str, **filters: str) -> list[int]:
    return numbers(search_tickets(session, query, SearchFilter.from_args(filters)))


def test_english_words_match_inflected_forms_and_rank_the_subject_first(
    session: Session, make_ticket: MakeTicket
) -> None:
    body_only = make_ticket(
        subject="Question about my plan", text="Also, the password reset link expired twice."
    ).ticket
    subject = make_ticket(subject="Password resets do not arrive", text="Nothing comes.").ticket
    make_ticket(subject="Shipping to Sylhet", text="When will my parcel arrive?")

    assert find(session, "passwords") == [subject.number, body_only.number]
    assert find(session, "resetting password") == [subject.number, body_only.number]
    assert find(session, "parcels") == [1003]
    assert find(session, "xylophone") == []


def test_bengali_words_match_across_suffixes_and_unicode_forms(
    session: Session, make_ticket: MakeTicket
) -> None:
    password = make_ticket(
        sender="karim@example.com",
        sender_name="করিম উদ্দিন",
        subject="পাসওয়ার্ড রিসেট হচ্ছে না",
        text="আমার পাসওয়ার্ডটি কাজ করছে না। bKash অ্যাকাউন্টে ঢুকতে পারছি না।",
    ).ticket
    delivery = make_ticket(
        sender="rina@example.com",
        subject="ডেলিভারি কবে হবে?",
        text="অর্ডারের ট্র্যাকিং নম্বর পাইনি।",
        channel="portal",
    ).ticket

    # Inflected forms (-এর, -টি) find the stem and the other way round.
    assert find(session, "পাসওয়ার্ডের") == [password.number]
    assert find(session, "অর্ডার") == [delivery.number]
    # Vowel signs, virama and conjuncts stay inside the word: ট্র্যাকিং is one word.
    assert find(session, "ট্র্যাকিং নম্বর") == [delivery.number]
    # The same word typed with decomposed vowel signs (NFD) is the same word.
    assert find(session, unicodedata.normalize("NFD", "ডেলিভারি")) == [delivery.number]
    # Mixed-script queries, and the customer's Bengali name.
    assert find(session, "bkash অ্যাকাউন্ট") == [password.number]
    assert find(session, "করিম") == [password.number]


def test_a_change_is_found_by_its_new_content_right_after_commit(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    ticket = make_ticket(subject="Printer trouble", text="It prints blank pages.").ticket
    assert find(session, "toner") == []

    tickets.reply_to_ticket(session, ticket, agent, "Please replace the toner cartridge.")
    session.commit()
    assert find(session, "toner") == [ticket.number]

    # Internal notes are searchable for agents.
    tickets.add_note(session, ticket, agent, "Customer has the LaserJet 1020 model.")
    session.commit()
    assert find(session, "laserjet") == [ticket.number]

    # A rolled-back change never reaches the index.
    tickets.add_note(session, ticket, agent, "Escalate to the hardware vendor.")
    session.rollback()
    assert find(session, "vendor") == []

    # A new message from the customer in the same thread.
    make_ticket(text="Still blank after the new cartridge, see photo", ticket_id=ticket.id)
    assert find(session, "photo") == [ticket.number]


def test_customer_name_email_and_ticket_number(session: Session, make_ticket: MakeTicket) -> None:
    sarah = make_ticket(
        sender="sarah.j@example.com", sender_name="Sarah Jones", subject="Invoice", text="Hi"
    ).ticket
    other = make_ticket(sender="omar@example.org", subject="Order 1001 missing", text="Hi").ticket

    assert find(session, "sarah.j@example.com") == [sarah.number]
    assert find(session, "Jones") == [sarah.number]
    assert find(session, "example.org") == [other.number]
    # A ticket number puts that ticket first, with or without '#'; the order number quoted in
    # another ticket's subject still matches after it.
    assert find(session, f"#{sarah.number}") == [sarah.number, other.number]
    assert find(session, str(other.number))[0] == other.number

    # Renaming the customer re-indexes all of their tickets in the same commit.
    update_customer(session, sarah.customer, name="Sarah Rahman")
    session.commit()
    assert find(session, "Rahman") == [sarah.number]
    assert find(session, "Jones") == []


def test_merge_split_and_merged_customers_stay_consistent(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    source = make_ticket(
        sender="a@example.com", subject="Refund", text="Wrong colour jacket"
    ).ticket
    target = make_ticket(sender="a@example.com", subject="Exchange", text="Size too small").ticket
    ticket_merge.merge_tickets(session, source, target, agent)
    session.commit()
    # The moved message is found on the target; the source only by its own subject.
    assert find(session, "jacket") == [target.number]
    assert find(session, "refund") == [source.number]

    message = session.scalar(
        select(Message).where(Message.ticket_id == target.id, Message.body_text.contains("Size"))
    )
    assert message is not None
    new = ticket_merge.split_message(session, message, agent)
    session.commit()
    assert find(session, "small") == [new.number]
    assert target.number not in find(session, "small")

    # Two customer records of one person: the moved tickets are found by the kept name.
    other = make_ticket(sender="b@example.com", sender_name="Bina Das", text="Router").ticket
    kept = session.scalar(select(Customer).where(Customer.email == "a@example.com"))
    assert kept is not None
    update_customer(session, kept, name="Anwar Hossain")
    merge_customers(session, other.customer, kept)
    session.commit()
    assert other.number in find(session, "Anwar Hossain")


def test_filters_status_channel_assignee_and_dates(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    mail = make_ticket(subject="Router blinking", text="red light").ticket
    chat = make_ticket(subject="Router setup", text="new router", channel="chat",
                       sender="visitor-9").ticket  # fmt: skip
    tickets.assign_ticket(session, chat, agent, agent)
    tickets.set_status(session, mail, TicketStatus.PENDING, agent)
    session.commit()

    assert sorted(find(session, "router")) == sorted([mail.number, chat.number])
    assert find(session, "router", channel="chat") == [chat.number]
    assert find(session, "router", status="pending") == [mail.number]
    assert find(session, "router", assignee=str(agent.id)) == [chat.number]
    assert find(session, "router", assignee="none") == [mail.number]
    today = datetime.now(UTC).date()
    assert len(find(session, "router", **{"from": today.isoformat()})) == 2
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert find(session, "router", **{"from": tomorrow}) == []
    assert len(find(session, "router", to=today.isoformat())) == 2

    for bad in ({"status": "bogus"}, {"from": "yesterday"}, {"assignee": "x"}):
        with pytest.raises(ServiceError):
            SearchFilter.from_args(bad)
    with pytest.raises(ServiceError):
        SearchFilter.from_args({"from": date(2026, 2, 1).isoformat(), "to": "2026-01-01"})


def test_highlights_escape_everything_but_the_marks(
    session: Session, make_ticket: MakeTicket
) -> None:
    make_ticket(
        subject="<b>Refund</b> please",
        text="Hello team,\n\n" + "filler words here " * 20 + "the refund <script>x</script>",
    )
    hit = search_tickets(session, "refunds").hits[0]
    assert str(hit.subject_html) == "&lt;b&gt;<mark>Refund</mark>&lt;/b&gt; please"
    snippet = str(hit.snippet_html)
    assert snippet.startswith("… ") and "<mark>refund</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "<script>" not in snippet


def test_any_word_fallback_stopwords_and_narrowing(
    session: Session, make_ticket: MakeTicket, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_ticket(subject="Modem", text="modem offline").ticket
    make_ticket(subject="Modem again", text="modem offline")
    newest = make_ticket(subject="Modem once more", text="modem offline").ticket

    fallback = search_tickets(session, "modem kangaroo")
    assert fallback.any_word and len(fallback.hits) == 3
    only_stop = search_tickets(session, "the and of")
    assert only_stop.only_stopwords and not only_stop.hits

    # More matches than the ranking window: the newest ones are ranked, and that is said.
    monkeypatch.setattr(search_service, "RANK_WINDOW", 1)
    monkeypatch.setattr(search_service, "MAX_RANK_WINDOW", 2)
    narrowed = search_tickets(session, "modem")
    assert narrowed.narrowed
    assert first.number not in numbers(narrowed) and newest.number in numbers(narrowed)
    # Filters that leave the window empty make it grow until older matches are reached.
    tickets.set_status(session, first, TicketStatus.PENDING, agent)
    session.commit()
    monkeypatch.setattr(search_service, "MAX_RANK_WINDOW", 4)
    assert find(session, "modem", status="pending") == [first.number]

    with pytest.raises(ServiceError):
        search_tickets(session, "x" * 500)


def test_search_page_and_api(
    agent_client: AgentClient, make_ticket: MakeTicket, client: FlaskClient
) -> None:
    make_ticket(subject="Charged twice", text="My card was charged twice for one order.")
    make_ticket(subject="অ্যাপ বন্ধ হয়ে যাচ্ছে", text="অ্যাপ খুললেই বন্ধ হয়ে যায়।")

    page = agent_client.get("/agent/search?q=charges").get_data(as_text=True)
    assert "<mark>Charged</mark> twice" in page and "#1001" in page and "#1002" not in page
    bn = agent_client.get("/agent/search", query_string={"q": "অ্যাপ"}).get_data(as_text=True)
    assert "<mark>অ্যাপ</mark>" in bn and "#1002" in bn
    # The top bar carries the search box on every agent page.
    assert 'action="/agent/search"' in agent_client.get("/agent/queue").get_data(as_text=True)

    bad = agent_client.get("/agent/search?q=card&status=bogus")
    assert bad.status_code == 400
    body = bad.get_data(as_text=True)
    assert "Invalid filter" in body and 'value="card"' in body  # what was typed is kept

    data = agent_client.get("/api/ui/tickets/search?q=card&channel=email").get_json()
    assert [t["number"] for t in data["tickets"]] == [1001]
    assert "<mark>card</mark>" in data["tickets"][0]["snippet_html"]
    assert agent_client.get("/api/ui/tickets/search?q=card&to=bad").status_code == 400

    # Not signed in as an agent: nothing is revealed.
    assert client.get("/agent/search?q=card").status_code in (302, 404)
    assert client.get("/api/ui/tickets/search?q=card").status_code in (302, 401, 404)


def test_cli_search_and_reindex(app: Flask, session: Session, make_ticket: MakeTicket) -> None:
    make_ticket(sender="nusrat@example.com", subject="ইনভয়েস পাইনি", text="invoice missing")
    runner = app.test_cli_runner()

    out = runner.invoke(args=["tickets", "search", "invoices", "--json"])
    assert out.exit_code == 0, out.output
    assert [t["number"] for t in json.loads(out.output)["tickets"]] == [1001]
    plain = runner.invoke(args=["tickets", "search", "ইনভয়েস"])
    assert "#1001" in plain.output and "ইনভয়েস পাইনি" in plain.output
    bad = runner.invoke(args=["tickets", "search", "x", "--status", "bogus"])
    assert bad.exit_code != 0 and "Invalid filter" in bad.output

    # An index lost or built by an older analyzer is rebuilt from the tables.
    session.rollback()  # SQLite: the test's own transaction would hold the write lock
    with db.engine(app).begin() as conn:
        conn.execute(text(f"DELETE FROM {TABLE}"))
    session.expire_all()
    assert find(session, "invoice") == []
    session.rollback()
    rebuilt = runner.invoke(args=["tickets", "reindex"])
    assert rebuilt.exit_code == 0 and "Indexed 1 tickets" in rebuilt.output
    assert find(session, "invoice") == [1001]


def test_a_ticket_deleted_leaves_the_index(session: Session, make_ticket: MakeTicket) -> None:
    ticket = make_ticket(subject="Spam offer", text="cheap watches").ticket
    assert find(session, "watches") == [ticket.number]
    session.delete(session.get(Ticket, ticket.id))
    session.commit()
    assert find(session, "watches") == []
