"""What the rows of one queue page share, worked out once per request.

A page has 50 rows but a handful of distinct labels, message counts and one link pattern; the
template filters looked each up again per row (the reader's locale and time zone, the catalog,
the URL map: ~400 lookups a page, a third of its CPU). :class:`RowText` holds them for the
request and formats each row's dates with the locale and zone it took once. Its output is the
filters' output (``tests/helpdesk/test_queue_page.py`` compares them in en and bn, in a time
zone that is not UTC).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache

import flask_babel
from babel import Locale, dates
from flask import url_for

from helpdesk.db import utcnow
from helpdesk.i18n import _, format_number, localize
from helpdesk.models import ChannelKind, Priority, Ticket, TicketStatus
from helpdesk.web.filters import channel_label, priority_label, status_label

_SAMPLE_NUMBER = 1042


class RowText:
    """Labels, strings, links and formatters for the queue rows of this request."""

    def __init__(self) -> None:
        self.locale: Locale = flask_babel.get_locale() or Locale.parse("en")
        self.tzinfo = flask_babel.get_timezone()
        self.now = utcnow()
        self.status = {s: status_label(s) for s in TicketStatus}
        self.priority = {int(p): priority_label(p) for p in Priority}
        self.channel = {c: channel_label(c) for c in ChannelKind}
        self.messages = _("Messages")
        self._select = _("Select %(number)s", number="\0")
        sample, suffix = url_for("agent.ticket", number=_SAMPLE_NUMBER), str(_SAMPLE_NUMBER)
        if not sample.endswith(suffix):
            raise RuntimeError(f"a ticket's URL no longer ends with its number: {sample}")
        self._ticket_href = sample[: -len(suffix)]
        self._counts: dict[int, str] = {}

    def href(self, ticket: Ticket) -> str:
        return f"{self._ticket_href}{ticket.number}"

    def select(self, ticket: Ticket) -> str:
        return self._select.replace("\0", ticket.display_number)

    def count(self, n: int) -> str:
        text = self._counts.get(n)
        if text is None:
            text = self._counts[n] = format_number(n)
        return text

    def when(self, value: datetime) -> str:
        """As the ``datetime`` filter: medium date and time in the reader's zone and digits."""
        return _when(value, self.tzinfo, self.locale)

    def ago(self, value: datetime) -> str:
        """As the ``ago`` filter, against the request's one "now"."""
        text = dates.format_timedelta(
            value - self.now, "minute", threshold=0.85, add_direction=True, locale=self.locale
        )
        return localize(text, self.locale)


@lru_cache(maxsize=8192)
def _when(value: datetime, zone: tzinfo, locale: Locale) -> str:
    # A pure function of its arguments, and the busiest views' first pages are the same tickets
    # request after request (every live refresh renders them again): remembered per process.
    return localize(dates.format_datetime(value, "medium", tzinfo=zone, locale=locale), locale)
