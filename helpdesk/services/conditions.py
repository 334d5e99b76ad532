"""Conditions on tickets, the one language of SLA policies and triggers.

A condition is ``{"field", "op", "value"}``; a list of them matches when all match. Fields:

=========================  ===================================================================
``status``                 new, open, pending, resolved, closed
``priority``               low, normal, high, urgent (or 1–4); ``gt``/``lt`` compare the rank
``channel``                email, portal, chat
``team``                   the team's id or name ("none": no team)
``assignee``               the agent's id or email ("none": unassigned)
``tags``                   the ticket's tags (``is``/``contains``: has the tag)
``organization``           the customer's organization's id or name
``customer``               the customer's email address; ``customer_domain`` its domain
``custom.<key>``           a ticket custom field's stored value (a multi-select's: has it)
``subject``                the ticket's subject
``text``                   the message of the event (a trigger on message.created), else the
                           ticket's first message
``language``               bn or en: the message's script (Bengali letters or not)
``within_business_hours``  true/false on the policy's, team's or default calendar
``actor``                  who acted: agent, customer or system (a trigger's event)
``changed``                the fields a ``ticket.updated`` changed (``contains status``)
``sla_target``             an ``sla.warning``/``sla.breached`` event's target
=========================  ===================================================================

Operators: ``is``, ``is_not``, ``contains``, ``not_contains``, ``matches`` (a regular
expression, case-insensitive, with a time limit), ``in``/``not_in`` (a list), ``gt``/``lt``/
``gte``/``lte`` (numbers, priorities, dates), ``is_set``/``is_empty``.

:func:`check` cleans a condition list when it is saved (unknown fields, operators, a pattern that
does not compile are refused there, in the admin's language); :func:`matches` evaluates one
against :class:`Facts`, which look each fact up only when a condition asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import regex

from helpdesk.i18n import _
from helpdesk.models import Priority, Ticket
from helpdesk.services.errors import ServiceError

PRIORITY_NAMES = {p.name.lower(): int(p) for p in Priority}
FIELDS = (
    "status",
    "priority",
    "channel",
    "team",
    "assignee",
    "tags",
    "organization",
    "customer",
    "customer_domain",
    "subject",
    "text",
    "language",
    "within_business_hours",
    "actor",
    "changed",
    "sla_target",
)
OPS = (
    "is",
    "is_not",
    "contains",
    "not_contains",
    "matches",
    "in",
    "not_in",
    "gt",
    "lt",
    "gte",
    "lte",
    "is_set",
    "is_empty",
)
MAX_CONDITIONS = 50
MAX_PATTERN = 500
MATCH_TIMEOUT = 0.05  # seconds: a pathological pattern cannot stall the worker
_BENGALI = regex.compile(r"\p{Bengali}")
_LETTER = regex.compile(r"\p{L}")


def detect_language(text: str | None) -> str:
    """ "bn" when at least a fifth of the text's letters are Bengali script, else "en"."""
    sample = (text or "")[:2000]
    letters = len(_LETTER.findall(sample))
    if not letters:
        return "en"
    return "bn" if len(_BENGALI.findall(sample)) * 5 >= letters else "en"


def priority_rank(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in PRIORITY_NAMES.values() else None
    text = str(value).strip().lower()
    if text.isdigit():
        return priority_rank(int(text))
    return PRIORITY_NAMES.get(text)


def _valid_field(name: str) -> bool:
    if name.startswith("custom."):
        key = name[len("custom.") :]
        return bool(regex.match(r"^[a-z][a-z0-9_]{0,39}$", key))
    return name in FIELDS


def check(raw: Any) -> list[dict[str, Any]]:
    """A condition list as saved: each ``{"field", "op", "value"}`` known, a pattern that
    compiles; a ServiceError naming the first problem otherwise."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ServiceError(_("Conditions must be a list."), code="invalid_conditions")
    if len(raw) > MAX_CONDITIONS:
        raise ServiceError(_("Too many conditions."), code="invalid_conditions")
    out = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise ServiceError(_("Conditions must be a list."), code="invalid_conditions")
        field = str(item.get("field") or "").strip()
        op = str(item.get("op") or "is").strip()
        value = item.get("value")
        if not _valid_field(field):
            raise ServiceError(
                _("Condition %(n)d: unknown field %(field)s.", n=index, field=field[:60]),
                code="invalid_conditions",
            )
        if op not in OPS:
            raise ServiceError(
                _("Condition %(n)d: unknown operator %(op)s.", n=index, op=op[:30]),
                code="invalid_conditions",
            )
        if op == "matches":
            pattern = str(value or "")
            try:
                if len(pattern) > MAX_PATTERN:
                    raise regex.error("too long")
                regex.compile(pattern)
            except regex.error:
                raise ServiceError(
                    _("Condition %(n)d: the pattern is not a valid regular expression.", n=index),
                    code="invalid_conditions",
                ) from None
        if op in ("in", "not_in") and not isinstance(value, list):
            value = [v.strip() for v in str(value or "").split(",") if v.strip()]
        if field == "priority" and op not in ("is_set", "is_empty"):
            values = value if isinstance(value, list) else [value]
            if any(priority_rank(v) is None for v in values):
                raise ServiceError(
                    _("Condition %(n)d: unknown priority.", n=index), code="invalid_conditions"
                )
        out.append({"field": field, "op": op, "value": value})
    return out


class Facts:
    """What conditions may ask about one ticket (and the event at hand), each looked up once
    when first asked: a policy that only tests the priority loads no organization."""

    def __init__(
        self,
        ticket: Ticket,
        *,
        text: str | None = None,
        actor_type: str | None = None,
        now: datetime | None = None,
        business_hours: Callable[[datetime], bool] | None = None,
        first_text: Callable[[], str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.ticket = ticket
        self._extra = dict(extra or {})
        self._text = text
        self._first_text = first_text
        self.actor_type = actor_type
        self.now = now
        self._business_hours = business_hours
        self._cache: dict[str, Any] = {}

    def get(self, field: str) -> Any:
        if field not in self._cache:
            self._cache[field] = self._look_up(field)
        return self._cache[field]

    def _message_text(self) -> str:
        if self._text is not None:
            return self._text
        return self._first_text() if self._first_text is not None else ""

    def _look_up(self, field: str) -> Any:
        if field in self._extra:  # what the event at hand says (changed fields, a target)
            return self._extra[field]
        t = self.ticket
        if field.startswith("custom."):
            return (t.custom or {}).get(field[len("custom.") :])
        if field == "status":
            return t.status.value
        if field == "priority":
            return int(t.priority)
        if field == "channel":
            return t.channel.value
        if field == "team":
            return (t.team_id, t.team.name.lower() if t.team else None)
        if field == "assignee":
            return (t.assignee_id, t.assignee.email.lower() if t.assignee else None)
        if field == "tags":
            return [tag.name for tag in t.tags]
        if field == "organization":
            org = t.customer.organization
            return (org.id, org.name.lower()) if org else (None, None)
        if field == "customer":
            return (t.customer.email or "").lower() or None
        if field == "customer_domain":
            email = (t.customer.email or "").lower()
            return email.rsplit("@", 1)[1] if "@" in email else None
        if field == "subject":
            return t.subject
        if field == "text":
            return self._message_text()
        if field == "language":
            return detect_language(self._message_text() or t.subject)
        if field == "within_business_hours":
            if self._business_hours is None or self.now is None:
                return True
            return self._business_hours(self.now)
        if field == "actor":
            return self.actor_type
        return None


def _same(actual: Any, expected: Any, field: str) -> bool:
    """Equality the way an admin means it: case-insensitive text, a priority by name or rank,
    a team/assignee/organization by id or name/email, yes/no for booleans."""
    if field == "priority":
        return actual == priority_rank(expected)
    if isinstance(actual, tuple):  # (id, name)
        if expected in (None, "", "none"):
            return actual[0] is None
        text = str(expected).strip().lower()
        return (text.isdigit() and actual[0] == int(text)) or actual[1] == text
    if isinstance(actual, bool):
        if isinstance(expected, bool):
            return actual is expected
        return actual is (str(expected).strip().lower() in ("1", "true", "yes", "on"))
    if actual is None:
        return expected in (None, "")
    if isinstance(actual, (int, float)) and not isinstance(expected, bool):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    return str(actual).strip().lower() == str(expected).strip().lower()


def _number(value: Any, field: str) -> float | str | None:
    if field == "priority":
        rank = priority_rank(value)
        return float(rank) if rank is not None else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)  # dates as ISO text compare in order


@lru_cache(maxsize=1024)
def _pattern(text: str) -> Any:
    """A rule's pattern compiled once per process (200 rules per event, most with patterns)."""
    return regex.compile(text, flags=regex.IGNORECASE)


def evaluate(condition: Mapping[str, Any], facts: Facts) -> bool:
    field, op, expected = condition["field"], condition["op"], condition.get("value")
    actual = facts.get(field)
    if op in ("is_set", "is_empty"):
        empty = actual in (None, "", []) or (isinstance(actual, tuple) and actual[0] is None)
        return empty if op == "is_empty" else not empty
    if isinstance(actual, list):  # tags, a multi-select
        members = [str(a).lower() for a in actual]
        if op in ("is", "contains"):
            return str(expected).strip().lower() in members
        if op in ("is_not", "not_contains"):
            return str(expected).strip().lower() not in members
        if op in ("in", "not_in"):
            hit = any(str(e).strip().lower() in members for e in expected or [])
            return hit if op == "in" else not hit
        actual = ", ".join(members)
    if op == "is":
        return _same(actual, expected, field)
    if op == "is_not":
        return not _same(actual, expected, field)
    if op in ("in", "not_in"):
        hit = any(_same(actual, e, field) for e in expected or [])
        return hit if op == "in" else not hit
    text = "" if actual is None else (actual[1] or "" if isinstance(actual, tuple) else str(actual))
    if op == "contains":
        return str(expected or "").lower() in text.lower()
    if op == "not_contains":
        return str(expected or "").lower() not in text.lower()
    if op == "matches":
        try:
            return _pattern(str(expected or "")).search(text, timeout=MATCH_TIMEOUT) is not None
        except (regex.error, TimeoutError):
            return False
    left, right = _number(actual, field), _number(expected, field)
    if left is None or right is None or type(left) is not type(right):
        return False
    if op == "gt":
        return left > right  # type: ignore[operator]
    if op == "lt":
        return left < right  # type: ignore[operator]
    if op == "gte":
        return left >= right  # type: ignore[operator]
    if op == "lte":
        return left <= right  # type: ignore[operator]
    return False


def matches(conditions: Sequence[Mapping[str, Any]], facts: Facts) -> bool:
    """All ``conditions`` hold (an empty list always matches)."""
    return all(evaluate(c, facts) for c in conditions)
