"""The search index's append fast path: a chat line appends its words to the ticket's row, and the
row stays what a full rebuild would write; anything but a plain append still rebuilds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.models import Agent, Message, Ticket
from helpdesk.services import search_index, ticket_merge, tickets
from helpdesk.services.customers import update_customer
from helpdesk.services.search import SearchFilter, search_tickets
from tests.conftest import MakeTicket

# Words of both languages that a chat mixes; every line also gets a word of its own.
WORDS = ["router", "blinking", "password", "refunded", "parcel", "পাসওয়ার্ড", "ডেলিভারি",
         "অ্যাকাউন্টে", "bKash", "রিসেট"]  # fmt: skip


def find(session: Session, query: str) -> list[int]:
    return [h.ticket.number for h in search_tickets(session, query, SearchFilter()).hits]


@contextmanager
def index_writes(session: Session) -> Iterator[list[str]]:
    """The statements sent to the index table while the block runs (what the database saw)."""
    seen: list[str] = []
    engine = session.get_bind()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "ticket_search" in statement and not statement.lstrip().upper().startswith("SELECT"):
            seen.append(" ".join(statement.split()).upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def appended_only(statements: list[str]) -> bool:
    return bool(statements) and all(s.startswith("UPDATE TICKET_SEARCH") for s in statements)


def rebuilt(statements: list[str]) -> bool:
    return any(s.startswith(("INSERT INTO TICKET_SEARCH", "DELETE FROM")) for s in statements)


def row(session: Session, ticket_id: int) -> Any:
    """The index row in a comparable form: SQLite's stored columns exactly; PostgreSQL's
    lexemes with how often and with which weights they occur (positions may shift by one)."""
    if session.get_bind().dialect.name == "sqlite":
        return tuple(
            session.execute(
                text("SELECT number, subject, people, body FROM ticket_search WHERE rowid = :id"),
                {"id": ticket_id},
            ).one()
        )
    return {
        lexeme: (len(positions or []), sorted(set(weights or [])))
        for lexeme, positions, weights in session.execute(
            text(
                "SELECT u.lexeme, u.positions, u.weights FROM ticket_search s,"
                " unnest(s.document) AS u WHERE s.ticket_id = :id"
            ),
            {"id": ticket_id},
        )
    }


def rebuild(session: Session, ticket_ids: list[int]) -> None:
    session.commit()
    with db.engine().begin() as conn:
        search_index.write_documents(conn, ticket_ids)


def test_a_long_chat_appends_each_line_and_equals_a_rebuild(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    chat = make_ticket(
        channel="chat", sender="visitor-append-1", subject="Router", text="Hello, my router"
    ).ticket
    other = make_ticket(subject="Unrelated", text="Invoice for March").ticket
    lines: list[str] = []
    for i in range(50):
        line = f"line{i}x {WORDS[i % len(WORDS)]} {WORDS[(i * 3 + 1) % len(WORDS)]}"
        lines.append(line)
        with index_writes(session) as writes:
            if i % 5 == 4:
                tickets.reply_to_ticket(session, chat, agent, line)
                session.commit()
            elif i % 7 == 6:
                tickets.add_note(session, chat, agent, line)
                session.commit()
            else:
                make_ticket(channel="chat", sender="visitor-append-1", text=line,
                            ticket_id=chat.id)  # fmt: skip
        assert appended_only(writes), (i, writes)
        # Found by its own word right after its commit, and only this ticket is.
        assert find(session, f"line{i}x") == [chat.number]

    appended = row(session, chat.id)
    matches = {w: find(session, w) for w in [*WORDS, "router", "hello", "invoice"]}
    for i, line in enumerate(lines):
        for word in line.split():
            assert chat.number in find(session, word), (i, word)
    assert matches["invoice"] == [other.number]

    rebuild(session, [chat.id, other.id])
    assert row(session, chat.id) == appended
    assert {w: find(session, w) for w in matches} == matches


def test_merge_split_customer_and_subject_changes_still_rewrite(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    chat = make_ticket(
        channel="chat", sender="visitor-append-2", subject="Chat", text="alpha lamp"
    ).ticket
    mail = make_ticket(sender="mina@example.com", subject="Mail", text="bravo kettle").ticket
    make_ticket(channel="chat", sender="visitor-append-2", text="charlie sofa", ticket_id=chat.id)

    # A new line together with a subject change: the subject is indexed, so a rewrite.
    with index_writes(session) as writes:
        tickets.reply_to_ticket(session, chat, agent, "delta mirror")
        chat.subject = "Lamp repair"
        session.commit()
    assert rebuilt(writes)
    assert find(session, "repair") == [chat.number] and find(session, "mirror") == [chat.number]

    # Merge: the target gains messages the unit of work never saw being moved.
    with index_writes(session) as writes:
        ticket_merge.merge_tickets(session, mail, chat, agent)
        session.commit()
    assert rebuilt(writes)
    assert find(session, "kettle") == [chat.number]

    # Split: a message leaves the chat for a new ticket.
    moved = session.scalar(
        select(Message).where(Message.ticket_id == chat.id, Message.body_text == "charlie sofa")
    )
    assert moved is not None
    with index_writes(session) as writes:
        new = ticket_merge.split_message(session, moved, agent)
        session.commit()
    assert rebuilt(writes)
    assert find(session, "sofa") == [new.number]

    # The customer's name is in every one of their tickets' documents.
    customer = session.get(Ticket, chat.id).customer  # type: ignore[union-attr]
    with index_writes(session) as writes:
        update_customer(session, customer, name="Rokeya Begum")
        session.commit()
    assert rebuilt(writes)
    assert chat.number in find(session, "Rokeya")

    # A line appended inside a savepoint that rolls back: its marks go with the savepoint, the
    # line kept is appended, and the rolled-back words are not found.
    with index_writes(session) as writes:
        tickets.reply_to_ticket(session, chat, agent, "echo violin")
        with session.begin_nested() as nested:
            tickets.add_note(session, chat, agent, "foxtrot trumpet")
            nested.rollback()
        session.commit()
    assert not rebuilt(writes)
    assert find(session, "violin") == [chat.number]
    assert find(session, "trumpet") == []

    # After all that, plain lines take the fast path again and still match a rebuild.
    with index_writes(session) as writes:
        make_ticket(channel="chat", sender="visitor-append-2", text="golf guitar",
                    ticket_id=chat.id)  # fmt: skip
    assert appended_only(writes)
    appended = row(session, chat.id)
    rebuild(session, [chat.id])
    assert row(session, chat.id) == appended
    assert find(session, "guitar") == [chat.number]


def test_a_ticket_without_an_index_row_gets_one(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    # A row lost (a database restored without the index): the next line writes it whole.
    ticket = make_ticket(subject="Scanner", text="hotel scanner").ticket
    id_column = "rowid" if session.get_bind().dialect.name == "sqlite" else "ticket_id"
    session.execute(text(f"DELETE FROM ticket_search WHERE {id_column} = :id"), {"id": ticket.id})
    session.commit()
    assert find(session, "scanner") == []
    tickets.reply_to_ticket(session, ticket, agent, "india juliet")
    session.commit()
    assert find(session, "scanner") == [ticket.number]
    assert find(session, "juliet") == [ticket.number]
