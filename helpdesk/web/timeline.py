"""The timeline box of the customer and organization pages: its filters (channel, kind) and
its "Older" link come from the page's query string (``tl_channel``, ``tl_kind``, ``tl_before``),
so paging keeps the filters; entries are grouped by day in the agent's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import request, url_for
from flask_babel import get_timezone

from helpdesk.extensions import db
from helpdesk.i18n import _l
from helpdesk.services import timeline
from helpdesk.services.timeline import Entry, InvalidCursor, Page
from helpdesk.web.filters import channel_label

KIND_LABELS = {
    "message": _l("Messages"),
    "note": _l("Internal notes"),
    "status": _l("Status changes"),
    "chat": _l("Chats"),
    "task": _l("Tasks"),
    "satisfaction": _l("Ratings"),
}


@dataclass
class Day:
    date: date
    entries: list[Entry]


@dataclass
class TimelineBox:
    days: list[Day]
    channel: str | None
    kind: str | None
    older_url: str | None
    newest_url: str | None
    # (label, url, active) for the filter chips
    channel_chips: list[tuple[Any, str, bool]]
    kind_chips: list[tuple[Any, str, bool]]


def _arg(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name, "")
    return value if value in allowed else None


def box(endpoint: str, **view_args: Any) -> TimelineBox:
    """The timeline of the page ``endpoint`` (``agent.customer`` with ``customer_id``, or
    ``agent.organization`` with ``organization_id``) for this request's filters and cursor."""
    channel = _arg("tl_channel", timeline.CHANNELS)
    kind = _arg("tl_kind", timeline.KINDS)
    before = None
    raw = request.args.get("tl_before", "")
    if raw:
        try:
            before = timeline.decode_cursor(raw[:500])
        except InvalidCursor:
            before = None
    filters: dict[str, Any] = {"channel": channel, "kind": kind, "before": before}
    page: Page
    if "customer_id" in view_args:
        page = timeline.customer_timeline(db.session, view_args["customer_id"], **filters)
    else:
        page = timeline.organization_timeline(db.session, view_args["organization_id"], **filters)

    def link(**changes: Any) -> str:
        args = {"tl_channel": channel, "tl_kind": kind, **changes}
        query = {k: v for k, v in args.items() if v}
        return url_for(endpoint, **view_args, **query, _anchor="timeline")

    tz = get_timezone()
    days: list[Day] = []
    for entry in page.entries:
        local = entry.at.astimezone(tz).date()
        if not days or days[-1].date != local:
            days.append(Day(local, []))
        days[-1].entries.append(entry)
    channel_chips = [(None, link(tl_channel=None), channel is None)] + [
        (channel_label(c), link(tl_channel=c), channel == c) for c in timeline.CHANNELS
    ]
    kind_chips = [(None, link(tl_kind=None), kind is None)] + [
        (KIND_LABELS[k], link(tl_kind=k), kind == k) for k in timeline.KINDS
    ]
    return TimelineBox(
        days=days,
        channel=channel,
        kind=kind,
        older_url=link(tl_before=timeline.encode_cursor(page.next)) if page.next else None,
        newest_url=link() if before is not None else None,
        channel_chips=channel_chips,
        kind_chips=kind_chips,
    )
