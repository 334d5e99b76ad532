"""What the rows of one queue page share, worked out once per request.

A page has 50 rows but a handful of distinct labels, message counts and one link pattern; the
template filters looked each up again per row (the reader's locale and time zone, the catalog,
the URL map: ~400 lookups a page, a third of its CPU). :class:`RowText` holds them for the
request and formats each row's dates with the locale and zone it took once. Its output is the
filters' output (``tests/helpdesk/test_queue_page.py`` compares them in en and bn, in a time
zone that is not UTC).

The rows themselves are written by :meth:`RowText.rows` from one precompiled format (an
f-string) over the page's plain :class:`~helpdesk.services.queue.QueueRow` values: through Jinja
each row was ~25 attribute lookups, method calls and escapes of its runtime (a quarter of a
page's CPU). Same markup as the template wrote (``tests/helpdesk/test_queue_page.py``); every
value from the database is escaped here, the labels once per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal, Protocol

import flask_babel
from babel import Locale, dates, numbers
from flask import url_for
from markupsafe import Markup, escape

from helpdesk.db import utcnow
from helpdesk.i18n import _, localize
from helpdesk.models import ChannelKind, Priority, TicketStatus
from helpdesk.services.queue import SORTS, VIEWS, QueueRow
from helpdesk.web.filters import channel_label, priority_label, status_label

# An SLA due time this close is "near" (amber in the queue).
SLA_NEAR = timedelta(hours=1)

_SAMPLE_NUMBER = 1042


class Numbered(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def display_number(self) -> str: ...


class Due(Protocol):
    @property
    def sla_due_at(self) -> datetime | None: ...


class _Labels:
    """What rows and the page's lists say in one language: the same request after request, so
    worked out once per language and catalog (each was a gettext through Flask-Babel's lookups,
    a tenth of a page)."""

    def __init__(self) -> None:
        self.status = {s: status_label(s) for s in TicketStatus}
        self.priority = {int(p): priority_label(p) for p in Priority}
        self.channel = {c: channel_label(c) for c in ChannelKind}
        self.views = {key: str(label) for key, label in VIEWS.items()}
        self.sorts = {key: str(label) for key, label in SORTS.items()}
        self.messages = _("Messages")
        self.select = _("Select %(number)s", number="\0")
        # The same, escaped once for the rows' markup.
        self.html_status = {s: str(escape(label)) for s, label in self.status.items()}
        self.html_priority = {p: str(escape(label)) for p, label in self.priority.items()}
        self.html_channel = {c: str(escape(label)) for c, label in self.channel.items()}
        self.html_messages = str(escape(self.messages))
        self.html_select = str(escape(self.select))
        self.sla_none = _("No SLA target running")


def sla_left(minutes: int) -> str:
    """A duration of the SLA column, "2 h 10 min", in the reader's digits."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h", d=days, h=hours)
    if hours:
        return _("%(h)d h %(m)d min", h=hours, m=mins)
    return _("%(m)d min", m=mins)


_LABELS: dict[tuple[str, object], _Labels] = {}


def _labels(locale: Locale) -> _Labels:
    # Keyed by the catalog object too (Flask-Babel keeps one per language and app), so another
    # app with other catalogs in the same process never reads these.
    key = (str(locale), flask_babel.get_translations())
    labels = _LABELS.get(key)
    if labels is None:
        labels = _LABELS[key] = _Labels()
    return labels


class RowText:
    """Labels, strings, links and formatters for the queue rows of this request."""

    def __init__(self) -> None:
        self.locale: Locale = flask_babel.get_locale() or Locale.parse("en")
        self.tzinfo = flask_babel.get_timezone()
        self.now = utcnow()
        # The caches below are keyed by the locale's name: Babel's Locale hashes and compares
        # five fields in Python, which a per-row cache key paid several times a row.
        self._lkey = str(self.locale)
        _LOCALES.setdefault(self._lkey, self.locale)
        labels = self.labels = _labels(self.locale)
        self.status, self.priority, self.channel = labels.status, labels.priority, labels.channel
        self.views, self.sorts, self.messages = labels.views, labels.sorts, labels.messages
        self._select = labels.select
        sample, suffix = url_for("agent.ticket", number=_SAMPLE_NUMBER), str(_SAMPLE_NUMBER)
        if not sample.endswith(suffix):
            raise RuntimeError(f"a ticket's URL no longer ends with its number: {sample}")
        self._ticket_href = sample[: -len(suffix)]
        self._html_href = str(escape(self._ticket_href))
        self._sla_none = str(escape(labels.sla_none))

    def href(self, ticket: Numbered) -> str:
        return f"{self._ticket_href}{ticket.number}"

    def select(self, ticket: Numbered) -> str:
        return self._select.replace("\0", ticket.display_number)

    def count(self, n: int) -> str:
        """As the ``number`` filter."""
        return _number(n, self._lkey)

    def when(self, value: datetime) -> str:
        """As the ``datetime`` filter: medium date and time in the reader's zone and digits."""
        return _when(value, self.tzinfo, self._lkey)

    def ago(self, value: datetime) -> str:
        """As the ``ago`` filter, against the request's one "now"."""
        delta = value - self.now
        seconds = delta.total_seconds()
        # Babel's text is a function of the unit, the rounded count and the direction only
        # (dates.format_timedelta: the first unit reaching the threshold, else the granularity):
        # found the same way here, the text is formatted once per process for each.
        for unit, per_unit in dates.TIMEDELTA_UNITS:
            amount = abs(seconds) / per_unit
            if amount >= _AGO_THRESHOLD or unit == _AGO_GRANULARITY:
                if unit == _AGO_GRANULARITY and amount > 0:
                    amount = max(1, amount)
                key = (unit, round(amount), seconds >= 0, self._lkey)
                text = _AGO.get(key)
                if text is None:
                    text = _AGO[key] = localize(
                        dates.format_timedelta(
                            delta,
                            _AGO_GRANULARITY,
                            threshold=_AGO_THRESHOLD,
                            add_direction=True,
                            locale=self.locale,
                        ),
                        self.locale,
                    )
                return text
        return ""

    def sla(self, t: Due) -> str:
        """The SLA cell, ``<td>`` included: time to the earliest running target's due time
        ("in 2 h 10 min", "5 min overdue"), classed normal, near (within an hour) or overdue."""
        due = t.sla_due_at
        if due is None:
            return f'<td class="sla"><span class="muted" title="{self._sla_none}">—</span></td>'
        seconds = (due - self.now).total_seconds()
        late = seconds < 0
        minutes = int(abs(seconds) // 60) if late else int((seconds + 59) // 60)
        key = (minutes, late, self._lkey)
        text = _SLA.get(key)
        if text is None:
            left = sla_left(minutes)
            text = _SLA[key] = str(
                escape(_("%(time)s overdue", time=left) if late else _("in %(time)s", time=left))
            )
        state = "overdue" if late else ("near" if seconds < SLA_NEAR.total_seconds() else "normal")
        return (
            f'<td class="sla sla-{state}"><time datetime="{due.isoformat()}"'
            f' title="{escape(self.when(due))}">{text}</time></td>'
        )

    def rows(self, rows: Iterable[QueueRow]) -> Markup:
        """The ``<tr>`` of each row (what ``agent/_queue_rows.html`` puts in its table)."""
        return Markup("".join([self.row(r) for r in rows]))  # noqa: S704 (escaped in row())

    def row(self, t: QueueRow) -> str:
        labels = self.labels
        href = f"{self._html_href}{t.number}"
        status = t.status.value
        channel = t.channel
        tags = "".join([f'<span class="tag">{escape(name)}</span>' for name in t.tags])
        assignee = escape(t.assignee_name) if t.assignee_name is not None else "—"
        select = self.labels.html_select.replace("\0", t.display_number)
        when, ago = escape(self.when(t.updated_at)), escape(self.ago(t.updated_at))
        return (
            f'<tr data-ticket-id="{t.id}" class="row-{status}">'
            f'<td class="sel"><input type="checkbox" name="ticket" value="{t.id}"'
            f' form="bulk-form" aria-label="{select}"></td>'
            f'<td class="num"><a href="{href}">#{t.number}</a></td>'
            f'<td class="subject"><span class="badge channel-{channel.value}">'
            f"{labels.html_channel[channel]}</span> "
            f'<a href="{href}">{escape(t.subject)}</a> {tags} '
            f'<span class="count" title="{labels.html_messages}">'
            f"{self.count(t.message_count)}</span></td>"
            f"<td>{escape(t.customer_name)}</td>"
            f'<td><span class="status status-{status}">{labels.html_status[t.status]}</span></td>'
            f'<td><span class="prio prio-{t.priority}">{labels.html_priority[t.priority]}'
            "</span></td>"
            f"<td>{assignee}</td>"
            f'<td><time datetime="{t.updated_at.isoformat()}" title="{when}">{ago}</time></td>'
            f"{self.sla(t)}"
            "</tr>\n"
        )


# format_ago's (helpdesk.i18n): minutes at the finest, Babel's default threshold.
_AGO_GRANULARITY: Literal["minute"] = "minute"
_AGO_THRESHOLD = 0.85
# (unit, count, future, locale) -> text: a few hundred entries at most per language.
_AGO: dict[tuple[str, int, bool, str], str] = {}
_LOCALES: dict[str, Locale] = {}
# (minutes, overdue, locale) -> the SLA cell's escaped text.
_SLA: dict[tuple[int, bool, str], str] = {}


@lru_cache(maxsize=1024)
def _number(n: int, lkey: str) -> str:
    locale = _LOCALES[lkey]
    # flask_babel.format_decimal with the request's locale, which it would look up per call.
    return localize(numbers.format_decimal(n, locale=locale), locale)


@lru_cache(maxsize=8192)
def _when(value: datetime, zone: tzinfo, lkey: str) -> str:
    locale = _LOCALES[lkey]
    # A pure function of its arguments, and the busiest views' first pages are the same tickets
    # request after request (every live refresh renders them again): remembered per process.
    return localize(dates.format_datetime(value, "medium", tzinfo=zone, locale=locale), locale)
