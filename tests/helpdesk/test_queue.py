"""The queue: views, filters, sorts and keyset pagination that never skips or repeats."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session

from helpdesk.models import Agent, ChannelKind, Priority, Ticket, TicketStatus
from helpdesk.services import tags, tickets
from helpdesk.services.errors import ServiceError
from helpdesk.services.queue import QueueFilter, iter_tickets, queue_page, queue_rows
from tests.conftest import MakeTicket


@pytest.fixture
def many(session: Session, make_ticket: MakeTicket, agent: Agent) -> list[Ticket]:
    channels = itertools.cycle(["email", "portal", "chat"])
    statuses = itertools.cycle(
        [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.RESOLVED]
    )
    out = []
    for i in range(23):
        t = make_ticket(sender=f"c{i}@example.com", channel=next(channels), commit=False).ticket
        tickets.set_status(session, t, next(statuses), agent)
        if i % 3 == 0:
            tickets.assign_ticket(session, t, agent, agent)
        if i % 5 == 0:
            tags.set_tags(session, t, ["vip"], agent)
        tickets.set_priority(session, t, Priority.URGENT if i % 4 == 0 else Priority.NORMAL, agent)
        out.append(t)
    session.commit()
    return out


def walk(session: Session, flt: QueueFilter, agent: Agent, size: int) -> list[int]:
    ids, after = [], None
    while True:
        page = queue_page(session, flt, agent=agent, after=after, limit=size)
        ids += [t.id for t in page.tickets]
        if not page.next_cursor:
            return ids
        after = page.next_cursor


@pytest.mark.parametrize("sort", ["updated", "oldest", "created", "priority"])
def test_pages_cover_every_ticket_once_in_order(
    session: Session, many: list[Ticket], agent: Agent, sort: str
) -> None:
    flt = QueueFilter(view="all", sort=sort)
    ids = walk(session, flt, agent, size=4)
    assert sorted(ids) == sorted(t.id for t in many)
    assert len(ids) == len(set(ids))
    by_id = {t.id: t for t in many}
    keys = {
        "updated": lambda t: (t.updated_at, t.id),
        "oldest": lambda t: (t.updated_at, t.id),
        "created": lambda t: t.id,
        "priority": lambda t: (t.priority, t.updated_at, t.id),
    }[sort]
    expected = sorted(many, key=keys, reverse=(sort != "oldest"))
    assert [by_id[i].id for i in ids] == [t.id for t in expected]


@pytest.mark.parametrize(
    ("args", "predicate"),
    [
        ({"view": "open"}, lambda t, a: t.active),
        ({"view": "pending"}, lambda t, a: t.status == TicketStatus.PENDING),
        ({"view": "resolved"}, lambda t, a: not t.active),
        ({"view": "mine"}, lambda t, a: t.assignee_id == a.id and t.active),
        ({"view": "unassigned"}, lambda t, a: t.assignee_id is None and t.active),
        ({"view": "all", "channel": "chat"}, lambda t, a: t.channel == ChannelKind.CHAT),
        ({"view": "all", "status": "new"}, lambda t, a: t.status == TicketStatus.NEW),
        ({"view": "all", "tag": "VIP"}, lambda t, a: "vip" in [x.name for x in t.tags]),
        ({"view": "all", "priority": "4"}, lambda t, a: t.priority == 4),
        ({"view": "open", "assignee": "ME"}, lambda t, a: t.assignee_id == a.id and t.active),
    ],
)
def test_views_and_filters(
    session: Session, many: list[Ticket], agent: Agent, args: dict[str, str], predicate: object
) -> None:
    args = {k: (str(agent.id) if v == "ME" else v) for k, v in args.items()}
    flt = QueueFilter.from_args(args)
    got = set(walk(session, flt, agent, size=5))
    want = {t.id for t in many if predicate(t, agent)}  # type: ignore[operator]
    assert got == want and want


@pytest.mark.parametrize("threshold", [1, 5000])
def test_common_and_rare_tags_find_the_same_tickets(
    session: Session,
    many: list[Ticket],
    agent: Agent,
    threshold: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both tag plans (index walk + probe for common tags, list + sort for rare ones)."""
    from helpdesk.services import queue

    monkeypatch.setattr(queue, "RARE_TAG_TICKETS", threshold)
    for sort in ("updated", "priority"):
        got = walk(session, QueueFilter(view="all", tag="vip", sort=sort), agent, size=2)
        assert sorted(got) == sorted(t.id for t in many if "vip" in [x.name for x in t.tags])
    assert walk(session, QueueFilter(view="all", tag="no-such-tag"), agent, size=2) == []


def test_a_tag_is_rare_or_common_by_its_own_tickets(
    session: Session, many: list[Ticket], agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's bounded count is per tag: "billing" on one ticket stays rare next to "vip" on
    five (an uncorrelated count saw every tag's rows and sent a rare tag down the index walk,
    the plan that is slow for it at scale)."""
    from helpdesk.services import queue

    tags.set_tags(session, many[1], ["billing"], agent)
    session.commit()
    monkeypatch.setattr(queue, "RARE_TAG_TICKETS", 3)
    billing, rare = queue._tag_plan(session, "billing")
    assert billing is not None and rare
    vip, rare = queue._tag_plan(session, "vip")
    assert vip is not None and not rare
    assert queue._tag_plan(session, "no-such-tag") == (None, True)


@pytest.mark.parametrize(
    "args",
    [
        {"view": "nope"},
        {"status": "archived"},
        {"priority": "9"},
        {"team": "x"},
        {"sort": "random"},
    ],
)
def test_bad_filters_are_user_errors(args: dict[str, str]) -> None:
    with pytest.raises(ServiceError):
        QueueFilter.from_args(args)


def test_bad_cursor_is_a_user_error(session: Session, many: list[Ticket]) -> None:
    with pytest.raises(ServiceError):
        queue_page(session, QueueFilter(view="all"), after="not-a-cursor")


def test_iter_tickets_returns_all(session: Session, many: list[Ticket]) -> None:
    assert len(list(iter_tickets(session, QueueFilter(view="all"), batch=7))) == len(many)


@pytest.mark.parametrize(
    "args",
    [
        {"view": "all"},
        {"view": "open", "sort": "priority"},
        {"view": "mine"},
        {"view": "all", "tag": "vip", "sort": "oldest"},
        {"view": "all", "channel": "chat", "sort": "created"},
    ],
)
def test_the_pages_rows_are_the_apis_tickets(
    session: Session, many: list[Ticket], agent: Agent, args: dict[str, str]
) -> None:
    """The web page's plain rows (queue_rows) walk the same tickets, in the same order, with the
    same cursors, and say what the tickets say."""
    flt = QueueFilter.from_args(args)
    after: str | None = None
    seen = 0
    while True:
        page = queue_page(session, flt, agent=agent, after=after, limit=4)
        rows = queue_rows(session, flt, agent=agent, after=after, limit=4)
        assert rows.next_cursor == page.next_cursor
        assert [
            (
                r.id,
                r.display_number,
                r.subject,
                r.status,
                r.priority,
                r.channel,
                r.message_count,
                r.updated_at,
                r.customer_name,
                r.assignee_name,
                r.tags,
            )
            for r in rows.rows
        ] == [
            (
                t.id,
                t.display_number,
                t.subject,
                t.status,
                t.priority,
                t.channel,
                t.message_count,
                t.updated_at,
                t.customer.display_name,
                t.assignee.name if t.assignee else None,
                [tag.name for tag in t.tags],
            )
            for t in page.tickets
        ]
        seen += len(rows.rows)
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert seen > 0
