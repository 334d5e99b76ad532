"""Ticket search for agents (read-only): ranked, filtered, with highlighted matches.

One API on both databases; the engine is the database's own full-text index, kept in step by
``services/search_index.py`` (why that and not Whoosh: docs/architecture.md, "Ticket search").

Query syntax, kept to what agents type: words (all must match), ``"quoted phrases"``, a ticket
number (``1042`` or ``#1042``: that ticket comes first). A word the analyzer splits into several
terms (``rahim@example.com``, ``re-open``) is matched as a phrase. Words are analyzed exactly as
the index was (NFC, Bengali and English stemming, stopwords dropped), so ``পাসওয়ার্ডের`` finds
``পাসওয়ার্ড`` and ``refunds`` finds ``refunded``. When no ticket has every word, tickets with
any of them are shown instead, and the results say so.

Filters are arguments beside the query, not operators inside it (the query is what agents type;
a word like ``plan:gold`` is searched as the words it is): status, channel, assignee, dates, and
a custom ticket field's value as ``cf.<key>=<value>``, the queue's argument (services/queue.py,
``custom_fields.filter_clause``).
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import regex
from markupsafe import Markup
from sqlalchemy import Select, bindparam, cast, column, func, literal_column, select, table, text
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session, joinedload, selectinload

from helpdesk.i18n import _l
from helpdesk.models import ChannelKind, Message, Ticket, TicketStatus
from helpdesk.models.search import TABLE
from helpdesk.services import search_index
from helpdesk.services.errors import ServiceError
from helpdesk.services.queue import QueueFilter, _custom_clauses, parse_custom, ticket_row

MAX_QUERY_LENGTH = 200
MAX_CHUNKS = 12
PER_PAGE = 25
MAX_PAGE = 40  # 1,000 results: past that an agent refines the query, nobody pages on
SNIPPET_WORDS_BEFORE = 10
SNIPPET_WORDS_AFTER = 26
MAX_MESSAGES_SCANNED = 300
RANK_WINDOW = 1000
MAX_RANK_WINDOW = 128_000

# Field weights. SQLite's bm25() takes one weight per FTS5 column (number, subject, people,
# body); PostgreSQL's ts_rank uses the tsvector weights A (number, subject), B (people), D.
_BM25 = f"bm25({TABLE}, 10.0, 4.0, 3.0, 1.0)"

_CHUNK = regex.compile(r'"([^"]*)"?|(\S+)')
_NUMBER = regex.compile(r"#?(\d{1,9})")
_WORD = search_index.WORD  # the analyzer's word pattern, for highlighting offsets


@dataclass(frozen=True)
class SearchFilter:
    status: TicketStatus | None = None
    channel: ChannelKind | None = None
    # An agent's id, or 0 for unassigned tickets.
    assignee_id: int | None = None
    # Created on or after / on or before these days (UTC), both inclusive.
    date_from: date | None = None
    date_to: date | None = None
    # ((key, value), ...) of custom ticket fields, from cf.<key>=<value> (as the queue's).
    custom: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> SearchFilter:
        """Parse query-string/CLI arguments; a bad value is a ServiceError (-> 400)."""
        try:
            status = TicketStatus(args["status"]) if args.get("status") else None
            channel = ChannelKind(args["channel"]) if args.get("channel") else None
        except ValueError as exc:
            raise ServiceError(_l("Invalid filter: %(error)s", error=str(exc))) from None
        assignee: int | None = None
        raw = args.get("assignee")
        if raw not in (None, ""):
            if raw == "none":
                assignee = 0
            else:
                try:
                    assignee = int(raw)
                except (TypeError, ValueError):
                    raise ServiceError(_l("Invalid value for %(name)s.", name="assignee")) from None

        def day(name: str) -> date | None:
            value = args.get(name)
            if value in (None, ""):
                return None
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise ServiceError(
                    _l("Invalid date for %(name)s: use YYYY-MM-DD.", name=name)
                ) from None

        date_from, date_to = day("from"), day("to")
        if date_from and date_to and date_from > date_to:
            raise ServiceError(_l("The start date is after the end date."))
        return cls(status, channel, assignee, date_from, date_to, parse_custom(args))

    def as_args(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.status:
            out["status"] = self.status.value
        if self.channel:
            out["channel"] = self.channel.value
        if self.assignee_id is not None:
            out["assignee"] = str(self.assignee_id) if self.assignee_id else "none"
        if self.date_from:
            out["from"] = self.date_from.isoformat()
        if self.date_to:
            out["to"] = self.date_to.isoformat()
        for key, value in self.custom:
            out[f"cf.{key}"] = value
        return out

    def apply(self, q: Select[Any], custom: list[Any] | None = None) -> Select[Any]:
        """The filters on ``q``; ``custom``: the custom fields' clauses
        (:func:`custom_clauses`)."""
        for clause in custom or ():
            q = q.where(clause)
        if self.status is not None:
            q = q.where(Ticket.status == self.status)
        if self.channel is not None:
            q = q.where(Ticket.channel == self.channel)
        if self.assignee_id == 0:
            q = q.where(Ticket.assignee_id.is_(None))
        elif self.assignee_id is not None:
            q = q.where(Ticket.assignee_id == self.assignee_id)
        if self.date_from is not None:
            q = q.where(Ticket.created_at >= datetime.combine(self.date_from, time(), UTC))
        if self.date_to is not None:
            end = datetime.combine(self.date_to + timedelta(days=1), time(), UTC)
            q = q.where(Ticket.created_at < end)
        return q


def custom_clauses(session: Session, flt: SearchFilter) -> list[Any]:
    """The WHERE clauses of the filter's custom fields (one look-up of their definitions, only
    when there are any); an unknown field or option is a ServiceError."""
    return _custom_clauses(session, QueueFilter(custom=flt.custom))


@dataclass(frozen=True)
class ParsedQuery:
    # Each chunk is one word or phrase as terms; a chunk of several terms is a phrase.
    chunks: list[list[str]]
    numbers: list[int]

    @property
    def terms(self) -> set[str]:
        return {t for chunk in self.chunks for t in chunk}

    def fts5(self, any_word: bool) -> str:
        # Terms never contain '"' (the analyzer keeps letters, marks, digits, '_', ZWJ/ZWNJ).
        parts = ['"' + " ".join(chunk) + '"' for chunk in self.chunks]
        return (" OR " if any_word else " ").join(parts)

    def tsquery(self, any_word: bool) -> str:
        def lexeme(term: str) -> str:
            return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"

        parts = ["(" + " <-> ".join(lexeme(t) for t in chunk) + ")" for chunk in self.chunks]
        return (" | " if any_word else " & ").join(parts)


def parse_query(query: str) -> ParsedQuery:
    query = query.strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise ServiceError(
            _l("The search is too long (at most %(n)d characters).", n=MAX_QUERY_LENGTH)
        )
    chunks: list[list[str]] = []
    numbers: list[int] = []
    for match in _CHUNK.finditer(query):
        raw = match.group(1) if match.group(1) is not None else match.group(2)
        number = _NUMBER.fullmatch(raw.strip())
        if number:
            numbers.append(int(number.group(1)))
        found = search_index.terms(raw)
        if found and found not in chunks:
            chunks.append(found)
    if len(chunks) > MAX_CHUNKS:
        raise ServiceError(_l("Use at most %(n)d words.", n=MAX_CHUNKS))
    return ParsedQuery(chunks, numbers)


@dataclass
class SearchHit:
    ticket: Ticket
    score: float
    subject_html: Markup
    people_html: Markup
    snippet_html: Markup = field(default_factory=Markup)
    message_id: int | None = None
    internal: bool = False


@dataclass
class SearchResults:
    query: str
    filter: SearchFilter
    hits: list[SearchHit]
    page: int = 1
    has_next: bool = False
    # No ticket had every word; these tickets have some of them.
    any_word: bool = False
    # The query had words, but all of them are too common to search for (stopwords).
    only_stopwords: bool = False
    # More than RANK_WINDOW tickets matched: the newest RANK_WINDOW of them were ranked.
    narrowed: bool = False


def search_tickets(
    session: Session,
    query: str,
    flt: SearchFilter | None = None,
    *,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> SearchResults:
    flt = flt or SearchFilter()
    page = min(max(page, 1), MAX_PAGE)
    parsed = parse_query(query)
    results = SearchResults(query=query, filter=flt, hits=[], page=page)
    if not parsed.chunks:
        results.only_stopwords = bool(_WORD.search(query))
        return results
    conn = session.connection()
    if not search_index.index_ready(conn):
        raise ServiceError(
            _l("The search index is missing. Run “helpdesk tickets reindex” to build it.")
        )
    offset = (page - 1) * per_page
    custom = custom_clauses(session, flt)
    ranked, results.narrowed = _ranked(
        session, parsed, flt, any_word=False, limit=per_page + 1, offset=offset, custom=custom
    )
    if not ranked and page == 1 and len(parsed.chunks) > 1:
        ranked, results.narrowed = _ranked(
            session, parsed, flt, any_word=True, limit=per_page + 1, offset=offset, custom=custom
        )
        results.any_word = bool(ranked)
    results.has_next = len(ranked) > per_page
    ranked = ranked[:per_page]
    if page == 1 and parsed.numbers:
        pinned = _by_number(session, parsed.numbers, flt, custom)
        ranked = [(tid, 0.0) for tid in pinned] + [r for r in ranked if r[0] not in pinned]
    results.hits = _hits(session, ranked, parsed.terms)
    return results


def _ranked(
    session: Session,
    parsed: ParsedQuery,
    flt: SearchFilter,
    *,
    any_word: bool,
    limit: int,
    offset: int,
    custom: list[Any] | None = None,
) -> tuple[list[tuple[int, float]], bool]:
    """``(ticket id, score)`` best first, and whether only the newest matches were ranked.

    Ranking scores every document it is given, so a word found in half a million tickets would
    take seconds. When more than :data:`RANK_WINDOW` tickets contain the words, only the newest
    :data:`RANK_WINDOW` of them are filtered and ranked: where that window starts is found by
    walking the index newest-first and stopping early. If the filters leave too few of them for
    the page, the window grows (x4, up to :data:`MAX_RANK_WINDOW`) before giving up.
    """
    if session.get_bind().dialect.name == "sqlite":
        fts = table(TABLE, column("rowid"))
        key = fts.c.rowid
        match: Any = text(f"{TABLE} MATCH :q").bindparams(q=parsed.fts5(any_word))
        # bm25() is lower for better matches.
        score: Any = literal_column(_BM25)
        order = [score, Ticket.updated_at.desc()]
    else:
        fts = table(TABLE, column("ticket_id"), column("document"))
        key = fts.c.ticket_id
        tsq = cast(bindparam("q", parsed.tsquery(any_word)), TSQUERY)
        match = fts.c.document.op("@@")(tsq)
        # Normalisation 1 divides by 1 + log(length): a long chat does not win by size alone.
        score = func.ts_rank(fts.c.document, tsq, 1)
        order = [score.desc(), Ticket.updated_at.desc()]
    ranked = (
        select(Ticket.id, score.label("score"))
        .select_from(fts)
        .join(Ticket, Ticket.id == key)
        .where(match)
        .order_by(*order)
    )
    window = RANK_WINDOW
    while True:
        # The index alone, newest first: no join, so this stops after `window` entries.
        floor = session.scalar(
            select(key).select_from(fts).where(match).order_by(key.desc()).limit(1).offset(window)
        )
        q = ranked if floor is None else ranked.where(key > floor)
        rows = session.execute(flt.apply(q, custom).limit(limit).offset(offset)).all()
        if floor is None or len(rows) >= limit or window >= MAX_RANK_WINDOW:
            return [(int(r[0]), float(r[1])) for r in rows], floor is not None
        window = min(window * 4, MAX_RANK_WINDOW)


def _by_number(
    session: Session, numbers: list[int], flt: SearchFilter, custom: list[Any] | None = None
) -> list[int]:
    q = flt.apply(
        select(Ticket.id).where(Ticket.number.in_(numbers)).order_by(Ticket.number), custom
    )
    return list(session.scalars(q))


def _hits(session: Session, ranked: list[tuple[int, float]], terms: set[str]) -> list[SearchHit]:
    if not ranked:
        return []
    ids = [tid for tid, _ in ranked]
    tickets = {
        t.id: t
        for t in session.scalars(
            select(Ticket)
            .where(Ticket.id.in_(ids))
            .options(
                joinedload(Ticket.customer),
                joinedload(Ticket.assignee),
                joinedload(Ticket.team),
                selectinload(Ticket.tags),
            )
        )
    }
    bodies: dict[int, list[tuple[int, str, bool]]] = defaultdict(list)
    for ticket_id, message_id, body, internal in session.execute(
        select(Message.ticket_id, Message.id, Message.body_text, Message.internal)
        .where(Message.ticket_id.in_(ids))
        .order_by(Message.ticket_id, Message.id)
    ):
        if len(bodies[ticket_id]) < MAX_MESSAGES_SCANNED:
            bodies[ticket_id].append((message_id, body or "", internal))
    hits = []
    for tid, score in ranked:
        ticket = tickets.get(tid)
        if ticket is None:
            continue
        customer = ticket.customer
        people = highlight(customer.name or "", terms)
        if customer.email and customer.name:
            people = Markup("{} &lt;{}&gt;").format(people, highlight(customer.email, terms))
        elif customer.email:
            people = highlight(customer.email, terms)
        hit = SearchHit(ticket, score, highlight(ticket.subject, terms), people)
        best = _best_message(bodies.get(tid, []), terms)
        if best is not None:
            hit.message_id, body, hit.internal = best
            hit.snippet_html = snippet(body, terms)
        hits.append(hit)
    return hits


def _matches(text_: str, terms: set[str]) -> Iterable[tuple[int, regex.Match[str], bool]]:
    for i, m in enumerate(_WORD.finditer(text_)):
        yield i, m, search_index.analyze_word(m.group(0)) in terms


def _best_message(
    messages: list[tuple[int, str, bool]], terms: set[str]
) -> tuple[int, str, bool] | None:
    """The message with the most distinct query terms (the earliest on a tie)."""
    best: tuple[int, str, bool] | None = None
    best_count = 0
    for message in messages:
        found = {
            search_index.analyze_word(m.group(0))
            for _i, m, hit in _matches(message[1], terms)
            if hit
        }
        if len(found) > best_count:
            best, best_count = message, len(found)
            if best_count == len(terms):
                break
    return best


def highlight(text_: str, terms: set[str]) -> Markup:
    """``text_`` escaped, with each word that matches a query term in ``<mark>``."""
    pieces: list[str] = []
    pos = 0
    for _i, m, hit in _matches(text_, terms):
        if hit:
            pieces += (html.escape(text_[pos : m.start()]), "<mark>", html.escape(m.group(0)))
            pieces.append("</mark>")
            pos = m.end()
    pieces.append(html.escape(text_[pos:]))
    return Markup("".join(pieces))  # noqa: S704  (every piece of the text is escaped above)


def snippet(text_: str, terms: set[str]) -> Markup:
    """A window of ``text_`` around its first match, highlighted, whitespace collapsed."""
    words = list(_WORD.finditer(text_))
    first = next(
        (i for i, m in enumerate(words) if search_index.analyze_word(m.group(0)) in terms), 0
    )
    if not words:
        return Markup()
    lo = max(first - SNIPPET_WORDS_BEFORE, 0)
    hi = min(first + SNIPPET_WORDS_AFTER, len(words) - 1)
    start = 0 if lo == 0 else words[lo].start()
    end = len(text_) if hi == len(words) - 1 else words[hi].end()
    piece = " ".join(text_[start:end].split())
    marked = highlight(piece, terms)
    before = "… " if start > 0 else ""
    after = " …" if end < len(text_) else ""
    return Markup(before) + marked + Markup(after)  # noqa: S704  (literal ellipses only)


def hit_row(hit: SearchHit) -> dict[str, Any]:
    """One result as the JSON API and ``tickets search --json`` give it."""
    return {
        **ticket_row(hit.ticket),
        "score": hit.score,
        "subject_html": str(hit.subject_html),
        "customer_html": str(hit.people_html),
        "snippet_html": str(hit.snippet_html),
        "matched_message_id": hit.message_id,
        "matched_internal_note": hit.internal,
    }
