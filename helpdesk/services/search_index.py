"""Keeping the ticket search index equal to the database, commit by commit.

The index (``helpdesk/models/search.py``) has one document per ticket: its number, subject,
customer (name and email) and every message's text, internal notes included (search is for
agents only), and the values of its text, long text, URL, dropdown and multi-select custom
fields (a dropdown's or multi-select's option by its value and both its labels, so "এন্টারপ্রাইজ"
finds the tickets on the Enterprise plan). Those go first in the body column, before the
messages, so appending a message keeps the row equal to a rebuilt one; relabelling an option or
archiving or deleting a field changes no document until ``helpdesk tickets reindex`` (deleting
one held by half a million tickets would otherwise rebuild half a million documents inside the
admin's transaction, holding SQLite's write lock for minutes).

Documents are written **inside the transaction that changed the ticket**, just
before it commits, so there is no moment at which a committed ticket is missing from the index
or found by old text, no queue that can lag, and a rollback undoes the index write with
everything else. ``helpdesk tickets reindex`` rebuilds every document from the tables (after an
analyzer change, or for a database restored without the index).

What marks a ticket for reindexing (collected on the transaction's unit of work by an
``after_flush`` listener on :class:`helpdesk.db.HelpdeskSession`, so every service, adapter and
view is covered without calling anything; the commit step writes the documents):

* a new or deleted ticket or message, a message whose text or ticket changed (split);
* a ticket whose number, subject, customer, custom values (``custom_fields.set_values``),
  ``merged_into_id`` or ``message_count`` changed
  (a merge moves messages with one bulk UPDATE that the unit of work never sees, but it always
  changes both tickets' counts);
* a customer whose name or email changed: all of that customer's tickets;
* rows a bulk ``UPDATE``/``DELETE`` is about to change (``do_orm_execute``): merging customers
  moves tickets with one statement.

Status, assignee, channel and dates are not in the document: filters join ``tickets``, so a bulk
assign of 500 tickets costs the index nothing.

The append fast path: a transaction that only *adds* messages to a ticket that already has an
index row (a chat line, a reply, a note) appends the new messages' terms to the row instead of
rebuilding the document from every message, which made a long chat cost more per line the longer
it ran. It applies only when nothing else indexed changed on that ticket: the ticket's
``message_count`` must have grown by exactly the number of new messages seen (a merge moves
messages without the unit of work seeing them, but changes the count, so it never qualifies), no
message of it was edited, moved or deleted, and no bulk statement touched it; anything else
(subject, customer, merge, split) keeps the full rewrite. The appended
row equals a rebuilt one: on SQLite byte for byte, on PostgreSQL the same lexemes and weights
(only positions differ when concurrent commits append out of id order, which no query sees).

Text analysis: the knowledge base's Bengali analyzer (NFC, whole Bengali words with vowel signs,
virama and ZWJ/ZWNJ, Bengali + English stopwords, the Bengali stemmer for Bengali words and
Porter2 for Latin ones), registered by ``create_app`` with :func:`register_analyzer` because
``helpdesk`` never imports ``kb``. Tickets mix both languages in one message ("bKash OTP আসছে
না"), so one mixed-script analyzer serves every ticket and every query.
"""

from __future__ import annotations

import logging
import unicodedata
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import regex
from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    bindparam,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from helpdesk.models import Customer, CustomField, FieldObject, FieldType, Message, Ticket
from helpdesk.models.search import (
    TABLE,
    create_search_schema,
    read_meta,
    search_schema_exists,
    write_meta,
)
from helpdesk.unit_of_work import UnitOfWork, add_commit_step, unit_of_work

log = logging.getLogger("helpdesk.search")

# The marks this module leaves on the transaction's unit of work, one kind with a tag each:
# ("ticket", id) and ("customer", id) to rewrite; ("appended", (ticket id, message id, text))
# for a message added to a ticket, with its text as written so appending it needs no SELECT (a
# later change of the text, a delete or a move marks the ticket for the full rewrite anyway);
# ("count", (ticket id, delta)) for the net change of a ticket's message_count. A savepoint
# rolled back drops its marks with its rows (helpdesk/unit_of_work.py).
_MARK = "search.mark"

TICKET_FIELDS = frozenset(
    {"number", "subject", "customer_id", "merged_into_id", "message_count", "custom"}
)
# The custom field types whose values are words someone would search for (a number, date or
# checkbox is a filter's business).
SEARCHED_TYPES = frozenset(
    {FieldType.TEXT, FieldType.LONG_TEXT, FieldType.URL, FieldType.DROPDOWN, FieldType.MULTI_SELECT}
)
_COUNT_ONLY = frozenset({"message_count"})
MESSAGE_FIELDS = frozenset({"body_text", "ticket_id"})
CUSTOMER_FIELDS = frozenset({"name", "email"})

# PostgreSQL keeps at most 256 positions per lexeme and positions up to 16383; beyond that the
# word is still found, only its phrase positions are clamped.
_PG_MAX_POSITIONS = 256
_PG_MAX_POSITION = 16383
# PostgreSQL refuses a tsvector holding a word longer than this (ProgramLimitExceeded: "word is
# too long"): such a word (a 5,000-letter chat line, a base64 blob in a mail) is left out of the
# index instead of failing the message's whole transaction. Nobody searches for one.
_PG_MAX_WORD_BYTES = 2046


# --- analysis ------------------------------------------------------------------------------


class _Token(Protocol):
    text: str
    startchar: int
    endchar: int


# A Whoosh-style analyzer: ``analyzer(text, chars=True)`` yields tokens with their offsets.
TokenStream = Callable[..., Iterable[_Token]]

# Used only where no analyzer was registered (a bare HelpdeskSession outside create_app):
# whole words, NFC, lower-cased; no stemming. The pattern is the KB tokenizer's.
WORD = regex.compile(r"[\p{L}\p{M}\p{N}\p{Pc}\u200c\u200d]+")


def _fallback_spans(text_: str) -> list[tuple[int, int, str]]:
    return [
        (m.start(), m.end(), unicodedata.normalize("NFC", m.group(0)).lower())
        for m in WORD.finditer(text_)
    ]


_analyzer: TokenStream | None = None
_analyzer_version = "0"  # the fallback's


def register_analyzer(app: Any, analyzer: TokenStream, version: int | str = "1") -> None:
    """Use ``analyzer`` for the ticket index and queries (called from ``create_app``).

    Its tokenizer must split text into the words of ``WORD`` (the KB's pattern) and
    its filters must look at one token at a time: :func:`terms` analyzes word by word.

    Process-wide as well as on ``app.extensions``: the index is written from a session event,
    which has no app, and every app of a process uses the same analyzer.
    """
    global _analyzer, _analyzer_version
    _analyzer = analyzer
    _analyzer_version = str(version)
    app.extensions["helpdesk.text_analyzer"] = analyzer
    analyze_word.cache_clear()


def spans(text_: str) -> list[tuple[int, int, str]]:
    """``(start, end, term)`` for every indexed word of ``text_`` (offsets into ``text_``)."""
    if not text_:
        return []
    if _analyzer is None:
        return _fallback_spans(text_)
    return [(t.startchar, t.endchar, t.text) for t in _analyzer(text_, chars=True)]


def terms(text_: str) -> list[str]:
    """The terms ``text_`` is indexed as, in order.

    Word by word through a cache instead of streaming the whole text through the analyzer:
    the same result, because the analyzer's filters (lowercase, stopwords, stemming) look at
    one token at a time, and five times faster on a rebuild, where the same few thousand words
    come back millions of times.
    """
    out = []
    for word in WORD.findall(text_):
        term = analyze_word(word)
        if term is not None:
            out.append(term)
    return out


@lru_cache(maxsize=200_000)
def analyze_word(word: str) -> str | None:
    """The term one word is indexed as (None for a stopword)."""
    found = [term for _s, _e, term in spans(word)]
    return found[0] if found else None


# --- documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    ticket_id: int
    number: list[str]
    subject: list[str]
    people: list[str]
    body: list[str]


def build_documents(conn: Connection, ticket_ids: Collection[int]) -> list[Document]:
    """The documents of ``ticket_ids`` as the database holds them now (missing ids skipped)."""
    if not ticket_ids:
        return []
    ids = sorted(ticket_ids)
    heads = conn.execute(
        select(
            Ticket.id, Ticket.number, Ticket.subject, Customer.name, Customer.email, Ticket.custom
        )
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.id.in_(ids))
    ).all()
    fields = _searched_fields(conn) if any(h[5] for h in heads) else {}
    bodies: dict[int, list[str]] = defaultdict(list)
    for ticket_id, body in conn.execute(
        select(Message.ticket_id, Message.body_text)
        .where(Message.ticket_id.in_(ids))
        .order_by(Message.ticket_id, Message.id)
    ):
        if body:
            bodies[ticket_id].append(body)
    docs = []
    for ticket_id, number, subject, name, email, custom in heads:
        body_terms: list[str] = terms(custom_text(fields, custom)) if custom else []
        for body in bodies.get(ticket_id, ()):
            body_terms.extend(terms(body))
        docs.append(
            Document(
                ticket_id=ticket_id,
                number=[str(number)],
                subject=terms(subject or ""),
                people=terms(f"{name or ''} {email or ''}"),
                body=body_terms,
            )
        )
    return docs


def _searched_fields(conn: Connection) -> dict[str, tuple[FieldType, dict[str, str]]]:
    """The active ticket fields whose values are indexed: key -> (type, each option's value
    with its labels as one text)."""
    out: dict[str, tuple[FieldType, dict[str, str]]] = {}
    for key, kind, options in conn.execute(
        select(CustomField.key, CustomField.type, CustomField.options).where(
            CustomField.object_type == FieldObject.TICKET, CustomField.active.is_(True)
        )
    ):
        if kind in SEARCHED_TYPES:
            labels = {
                str(o["value"]): " ".join(
                    dict.fromkeys(str(o.get(k) or "") for k in ("value", "en", "bn"))
                )
                for o in options or []
            }
            out[key] = (kind, labels)
    return out


def custom_text(fields: dict[str, tuple[FieldType, dict[str, str]]], values: Any) -> str:
    """A ticket's custom values as the words a search finds them by."""
    if not isinstance(values, dict):
        return ""
    parts = []
    for key, value in values.items():
        if key not in fields or value in (None, "", []):
            continue
        kind, labels = fields[key]
        if kind == FieldType.DROPDOWN:
            parts.append(labels.get(str(value), str(value)))
        elif kind == FieldType.MULTI_SELECT and isinstance(value, list):
            parts.extend(labels.get(str(v), str(v)) for v in value)
        else:
            parts.append(str(value))
    return " ".join(parts)


def _tsvector_literal(columns: Sequence[tuple[list[str], str]]) -> str:
    """A tsvector in PostgreSQL's input syntax: ``'term':1A,7A 'other':2D``."""
    positions: dict[str, list[str]] = {}
    pos = 0
    for column_terms, weight in columns:
        for term in column_terms:
            pos += 1
            if len(term.encode()) > _PG_MAX_WORD_BYTES:
                continue
            at = positions.setdefault(term, [])
            if len(at) < _PG_MAX_POSITIONS:
                at.append(f"{min(pos, _PG_MAX_POSITION)}{weight}")
        pos += 1  # a phrase never spans two fields
    parts = []
    for term, at in positions.items():
        quoted = term.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{quoted}':{','.join(at)}")
    return " ".join(parts)


def write_documents(conn: Connection, ticket_ids: Collection[int]) -> int:
    """Rewrite the index rows of ``ticket_ids`` from the tables; rows of deleted tickets go."""
    if not ticket_ids:
        return 0
    docs = build_documents(conn, ticket_ids)
    ids = sorted(ticket_ids)
    expanding: BindParameter[Any] = bindparam("ids", expanding=True)
    if conn.dialect.name == "sqlite":
        conn.execute(
            text("DELETE FROM ticket_search WHERE rowid IN :ids").bindparams(expanding),
            {"ids": ids},
        )
        if docs:
            conn.execute(
                text(
                    "INSERT INTO ticket_search (rowid, number, subject, people, body)"
                    " VALUES (:id, :number, :subject, :people, :body)"
                ),
                [
                    {
                        "id": d.ticket_id,
                        "number": " ".join(d.number),
                        "subject": " ".join(d.subject),
                        "people": " ".join(d.people),
                        "body": " ".join(d.body),
                    }
                    for d in docs
                ],
            )
        return len(docs)
    present = {d.ticket_id for d in docs}
    gone = [i for i in ids if i not in present]
    if gone:
        conn.execute(
            text("DELETE FROM ticket_search WHERE ticket_id IN :ids").bindparams(expanding),
            {"ids": gone},
        )
    if docs:
        conn.execute(
            text(
                "INSERT INTO ticket_search (ticket_id, document)"
                " VALUES (:id, CAST(:doc AS tsvector))"
                " ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document"
            ),
            [
                {
                    "id": d.ticket_id,
                    "doc": _tsvector_literal(
                        [(d.number, "A"), (d.subject, "A"), (d.people, "B"), (d.body, "D")]
                    ),
                }
                for d in docs
            ],
        )
    return len(docs)


# --- keeping it in step ----------------------------------------------------------------------


def _changed(obj: Any, fields: Collection[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[f].history.has_changes() for f in fields)


def _changed_fields(obj: Any, fields: Collection[str]) -> set[str]:
    state = inspect(obj)
    return {f for f in fields if state.attrs[f].history.has_changes()}


def _count_delta(ticket: Ticket) -> int | None:
    """How much this flush changed ``message_count`` (None when it cannot tell)."""
    history = inspect(ticket).attrs.message_count.history
    if len(history.deleted) != 1 or len(history.added) != 1:
        return None
    old, new = history.deleted[0], history.added[0]
    if not isinstance(old, int) or not isinstance(new, int):
        return None  # e.g. a SQL expression: the value is known only to the database
    return new - old


def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    uow = unit_of_work(session)
    for obj in session.new:
        if isinstance(obj, Ticket):
            uow.add(_MARK, ("ticket", obj.id))
        elif isinstance(obj, Message):
            uow.add(_MARK, ("appended", (obj.ticket_id, obj.id, obj.body_text)))
    for obj in session.dirty:
        if isinstance(obj, Ticket):
            changed = _changed_fields(obj, TICKET_FIELDS)
            if not changed:
                continue
            delta = _count_delta(obj) if changed == _COUNT_ONLY else None
            if delta is None:
                uow.add(_MARK, ("ticket", obj.id))
            else:
                uow.add(_MARK, ("count", (obj.id, delta)))
        elif isinstance(obj, Message) and _changed(obj, MESSAGE_FIELDS):
            uow.add(_MARK, ("ticket", obj.ticket_id))
            # A message moved off a ticket (split) changes the ticket it left too.
            for left in inspect(obj).attrs.ticket_id.history.deleted:
                if left:
                    uow.add(_MARK, ("ticket", left))
        elif isinstance(obj, Customer) and _changed(obj, CUSTOMER_FIELDS):
            uow.add(_MARK, ("customer", obj.id))
    for obj in session.deleted:
        if isinstance(obj, Ticket):
            uow.add(_MARK, ("ticket", obj.id))
        elif isinstance(obj, Message):
            uow.add(_MARK, ("ticket", obj.ticket_id))


def _on_execute(state: ORMExecuteState) -> None:
    """Bulk ``UPDATE``/``DELETE`` statements (merges move messages and tickets with one
    statement each) bypass the unit of work: mark the rows they are about to touch."""
    if not (state.is_update or state.is_delete):
        return
    stmt: Any = state.statement
    table = getattr(stmt, "table", None)
    name = getattr(table, "name", None)
    watched = _BULK_WATCH.get(name or "")
    if table is None or watched is None or stmt.whereclause is None:
        return
    key, fields, tag = watched
    # SET parameters are named after their columns (WHERE ones get a suffix).
    if state.is_update and not set(stmt.compile().params) & fields:
        return
    ids = state.session.execute(select(table.c[key]).where(stmt.whereclause)).scalars()
    uow = unit_of_work(state.session)
    for i in ids:
        if i is not None:
            uow.add(_MARK, (tag, i))


_BULK_WATCH: dict[str, tuple[str, frozenset[str], str]] = {
    # Not ``custom``: only deleting a field writes it in bulk (see the module's docstring).
    "tickets": ("id", TICKET_FIELDS - {"custom"}, "ticket"),
    "messages": ("ticket_id", MESSAGE_FIELDS, "ticket"),
    "customers": ("id", CUSTOMER_FIELDS, "customer"),
}


def message_written(session: Session, ticket_id: int, message_id: int, body_text: str) -> None:
    """Index a message inserted without the unit of work (``messages.append_message`` with
    ``write_now``), whose ticket's ``message_count`` went up by one in the same way: what
    :func:`_after_flush` records for a flushed one, so the commit appends its words."""
    uow = unit_of_work(session)
    uow.add(_MARK, ("appended", (ticket_id, message_id, body_text)))
    uow.add(_MARK, ("count", (ticket_id, 1)))


def tickets_written(session: Session, ticket_ids: Iterable[int]) -> None:
    """Index tickets (with their messages) inserted without the unit of work (the ticket
    import's Core statements): their documents are written from the tables by this
    transaction's commit step, as for tickets the flush saw."""
    uow = unit_of_work(session)
    for ticket_id in ticket_ids:
        uow.add(_MARK, ("ticket", ticket_id))


_BODIES = (
    select(Message.id, Message.ticket_id, Message.body_text)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .order_by(Message.id)
)


def append_messages(
    conn: Connection, appended: dict[int, list[int]], texts: dict[int, str] | None = None
) -> set[int]:
    """Append the terms of new messages to their tickets' index rows.

    ``appended`` maps ticket id -> ids of messages added to it (and nothing else indexed
    changed); ``texts`` holds the text of those it knows (message id -> body), the others are
    read. Returns the tickets this could not serve (no index row yet, a message gone), which
    need :func:`write_documents`.
    """
    known = texts or {}
    bodies: dict[int, tuple[int, str]] = {}  # message id -> (ticket id, text)
    for ticket_id, message_ids in appended.items():
        for message_id in message_ids:
            if message_id in known:
                bodies[message_id] = (ticket_id, known[message_id])
    missing = sorted(m for ms in appended.values() for m in ms if m not in bodies)
    if not bodies and not missing:
        return set()
    if missing:
        for message_id, ticket_id, body in conn.execute(_BODIES, {"ids": missing}):
            bodies[message_id] = (ticket_id, body)
    new_terms: dict[int, list[str]] = defaultdict(list)
    found: dict[int, int] = defaultdict(int)
    for message_id in sorted(bodies):
        ticket_id, body = bodies[message_id]
        found[ticket_id] += 1
        if body:
            new_terms[ticket_id].extend(terms(body))
    redo = {t for t, ms in appended.items() if found.get(t, 0) != len(ms)}
    sqlite = conn.dialect.name == "sqlite"
    for ticket_id in sorted(set(appended) - redo):
        words = new_terms.get(ticket_id)
        if not words:
            # Nothing to add, but the row must exist for the document to be right.
            exists = text(
                "SELECT 1 FROM ticket_search WHERE rowid = :id"
                if sqlite
                else "SELECT 1 FROM ticket_search WHERE ticket_id = :id"
            )
            if conn.scalar(exists, {"id": ticket_id}) is None:
                redo.add(ticket_id)
            continue
        if sqlite:
            # The same string a rebuild writes: all body terms joined by single spaces.
            result = conn.execute(
                text(
                    "UPDATE ticket_search SET body = CASE WHEN body = '' THEN :new"
                    " ELSE body || ' ' || :new END WHERE rowid = :id"
                ),
                {"id": ticket_id, "new": " ".join(words)},
            )
        else:
            # ``||`` shifts the right operand's positions past the left's: the new words
            # follow the old ones, as in a rebuild.
            result = conn.execute(
                text(
                    "UPDATE ticket_search SET document = document || CAST(:new AS tsvector)"
                    " WHERE ticket_id = :id"
                ),
                {"id": ticket_id, "new": _tsvector_literal([(words, "D")])},
            )
        if result.rowcount != 1:
            redo.add(ticket_id)
    return redo


def _write_index(session: Session, uow: UnitOfWork) -> None:
    """The commit step: write the documents of what the transaction's flushes marked."""
    # Flush first only when something may be pending; the common read-only commit is free.
    if session.new or session.dirty or session.deleted:
        session.flush()
    marks = uow.take(_MARK)
    if not marks:
        return
    tickets: set[int] = set()
    customers: set[int] = set()
    appended: dict[int, list[int]] = {}
    texts: dict[int, str] = {}
    deltas: dict[int, int] = {}
    for tag, value in marks:
        if tag == "ticket":
            tickets.add(value)
        elif tag == "customer":
            customers.add(value)
        elif tag == "appended":
            ticket_id, message_id, body = value
            appended.setdefault(ticket_id, []).append(message_id)
            texts[message_id] = body
        else:
            ticket_id, delta = value
            deltas[ticket_id] = deltas.get(ticket_id, 0) + delta
    conn = session.connection()
    if not _index_ready(conn):
        return
    if customers:
        tickets.update(
            conn.scalars(select(Ticket.id).where(Ticket.customer_id.in_(sorted(customers))))
        )
    fast: dict[int, list[int]] = {}
    for ticket_id in set(appended) | set(deltas):
        if ticket_id in tickets:
            continue
        added = appended.get(ticket_id, [])
        # The count grew by exactly the messages seen: nothing arrived behind our back.
        if added and deltas.get(ticket_id, 0) == len(added):
            fast[ticket_id] = added
        else:
            tickets.add(ticket_id)
    tickets.update(append_messages(conn, fast, texts))
    write_documents(conn, tickets)


# Engines known to have the index table. A database upgraded without it (no migration yet)
# keeps working: its commits skip the index, and a search says to run `tickets reindex`.
_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_warned: weakref.WeakSet[Engine] = weakref.WeakSet()


def _index_ready(conn: Connection) -> bool:
    if conn.engine in _ready:
        return True
    if search_schema_exists(conn):
        _ready.add(conn.engine)
        return True
    if conn.engine not in _warned:
        _warned.add(conn.engine)
        log.warning("ticket search index table is missing; run `helpdesk tickets reindex`")
    return False


def index_ready(conn: Connection) -> bool:
    return _index_ready(conn)


_installed = False


def install(session_class: type[Session]) -> None:
    """Listen on ``session_class`` (``HelpdeskSession``) once per process."""
    global _installed
    if _installed:
        return
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "do_orm_execute", _on_execute)
    add_commit_step("search.index", _write_index, order=20)
    _installed = True


# --- rebuilding ------------------------------------------------------------------------------


def analyzer_version() -> str:
    """The version of the text analysis tickets are indexed with now (the KB's analyzer's)."""
    return _analyzer_version


def index_outdated(conn: Connection) -> bool:
    """Whether the index holds documents analysed otherwise than now (an upgrade changed the
    analysis: its words would no longer match the queries')."""
    if not search_schema_exists(conn):
        return False
    stored = read_meta(conn, "analyzer")
    if stored == _analyzer_version:
        return False
    # An index from before versions were recorded: outdated if it holds any document.
    return stored is not None or (
        conn.execute(text(f"SELECT 1 FROM {TABLE} LIMIT 1")).first() is not None  # noqa: S608
    )


def record_analyzer(conn: Connection) -> None:
    """The index is (from now on) written with the current analysis."""
    write_meta(conn, "analyzer", _analyzer_version)


def count_tickets(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(Ticket)) or 0)


def reindex_all(
    engine: Engine,
    *,
    batch: int = 2000,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Rebuild every ticket's document, one short transaction per ``batch`` tickets.

    The old documents keep answering searches meanwhile. Each batch reads its tickets and
    writes their documents in one transaction, under a share lock on PostgreSQL (SQLite's
    writer lock does the same), so a reply committed during the rebuild cannot be overwritten
    by an older copy; a commit made after the batch writes its own document as always. Rows of
    tickets that no longer exist are removed at the end.
    """
    with engine.begin() as conn:
        create_search_schema(conn)
    started_with = _analyzer_version
    count = 0
    last = 0
    while True:
        with engine.begin() as conn:
            query = select(Ticket.id).where(Ticket.id > last).order_by(Ticket.id).limit(batch)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(read=True)
            ids = list(conn.scalars(query))
            if not ids:
                break
            count += write_documents(conn, ids)
        last = ids[-1]
        if progress is not None:
            progress(len(ids))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "DELETE FROM ticket_search WHERE rowid NOT IN (SELECT id FROM tickets)"
            )
            # Merge the FTS5 segments written batch by batch into one b-tree per term.
            conn.exec_driver_sql("INSERT INTO ticket_search (ticket_search) VALUES ('optimize')")
        else:
            conn.exec_driver_sql(
                "DELETE FROM ticket_search s WHERE NOT EXISTS"
                " (SELECT 1 FROM tickets t WHERE t.id = s.ticket_id)"
            )
        write_meta(conn, "analyzer", started_with)
    return count
