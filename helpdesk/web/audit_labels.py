"""What an audit line says in a person's language: one label per recorded action.

Every ``audit.record(..., action, ...)`` in the code has a label here or in the channel that
records it (channels register theirs with :func:`register`); a test walks the code for every
recorded action and fails on one without a label, so a history never shows ``chat.accepted``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from helpdesk.i18n import _, format_datetime
from helpdesk.web.filters import channel_label, priority_label, status_label

Label = Callable[[Mapping[str, Any]], str]
_LABELS: dict[str, Label] = {}


def register(action: str, label: Label) -> None:
    _LABELS[action] = label


def has_label(action: str) -> bool:
    return action in _LABELS


def describe(action: str, data: Mapping[str, Any] | None) -> str:
    label = _LABELS.get(action)
    if label is None:
        # An action recorded by a version that knew it (or a plugin since removed).
        return _("made a change")
    return label(data or {})


def _names(values: Any) -> str:
    return ", ".join(str(v) for v in values or []) or "—"


def _when(value: str) -> str:
    return format_datetime(datetime.fromisoformat(value), "medium")


def _assignee(d: Mapping[str, Any]) -> str:
    if d.get("auto") == "least_open":
        return _("assigned automatically to %(name)s (least open tickets)", name=d.get("to"))
    if d.get("auto"):
        return _("assigned automatically to %(name)s (round robin)", name=d.get("to"))
    if d.get("to"):
        return _("assigned to %(name)s", name=d["to"])
    return _("removed the assignee")


_BUILT_IN: dict[str, Label] = {
    "ticket.created": lambda d: _(
        "opened the ticket via %(channel)s", channel=channel_label(d.get("channel", "email"))
    ),
    "ticket.status": lambda d: _(
        "changed status from %(old)s to %(new)s",
        old=status_label(d["from"]),
        new=status_label(d["to"]),
    ),
    "ticket.assignee": _assignee,
    "ticket.team": lambda d: (
        _("moved to team %(name)s", name=d["to"]) if d.get("to") else _("removed the team")
    ),
    "ticket.priority": lambda d: _("changed priority to %(new)s", new=priority_label(d["to"])),
    "ticket.tags": lambda d: _(
        "changed tags (added: %(added)s; removed: %(removed)s)",
        added=_names(d.get("added")),
        removed=_names(d.get("removed")),
    ),
    "ticket.merged": lambda d: _("merged ticket #%(number)s into this one", number=d.get("source")),
    "ticket.merged_into": lambda d: _(
        "merged this ticket into #%(number)s", number=d.get("target")
    ),
    "ticket.split": lambda d: _(
        "moved a message to the new ticket #%(number)s", number=d.get("new")
    ),
    "ticket.split_from": lambda d: _(
        "opened this ticket with a message from #%(number)s", number=d.get("old")
    ),
    "ticket.imported": lambda d: (
        _("imported this ticket from another helpdesk (its id there: %(id)s)", id=d["external_id"])
        if d.get("external_id")
        else _("imported this ticket from another helpdesk")
    ),
    "ticket.follow_up": lambda d: (
        _("set the follow-up date to %(date)s", date=_when(d["to"]))
        if d.get("to")
        else _("removed the follow-up date")
    ),
    "message.reply": lambda d: _("replied"),
    "message.note": lambda d: _("added an internal note"),
    "message.received": lambda d: _("wrote a message"),
    "message.failed": lambda d: _("delivery failed: %(reason)s", reason=d.get("reason", "")),
    "message.bounced": lambda d: _("the mail bounced: %(reason)s", reason=d.get("reason", "")),
    "message.retry": lambda d: _("asked to retry a delivery"),
    "team.members": lambda d: _(
        "changed the members of team %(team)s (added: %(added)s; removed: %(removed)s)",
        team=d.get("team"),
        added=_names(d.get("added")),
        removed=_names(d.get("removed")),
    ),
    "team.assignment": lambda d: _(
        "changed the automatic assignment of team %(team)s", team=d.get("team")
    ),
    "organization.merged": lambda d: _(
        "merged the organization %(name)s into this one", name=d.get("merged_name")
    ),
}
_LABELS.update(_BUILT_IN)
