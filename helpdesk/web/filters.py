"""Template helpers: labels for domain values and locale-aware dates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from flask_babel import get_locale, get_timezone

from helpdesk.db import utcnow
from helpdesk.i18n import (
    LANGUAGE_NAMES,
    _l,
    format_ago,
    format_date,
    format_datetime,
    format_number,
    format_percent,
    format_time,
)
from helpdesk.models import (
    ChannelKind,
    DeliveryStatus,
    IdentityKind,
    MessageKind,
    Priority,
    TicketStatus,
)

STATUS_LABELS = {
    TicketStatus.NEW: _l("New"),
    TicketStatus.OPEN: _l("Open"),
    TicketStatus.PENDING: _l("Pending"),
    TicketStatus.RESOLVED: _l("Resolved"),
    TicketStatus.CLOSED: _l("Closed"),
}
PRIORITY_LABELS = {
    Priority.LOW: _l("Low"),
    Priority.NORMAL: _l("Normal"),
    Priority.HIGH: _l("High"),
    Priority.URGENT: _l("Urgent"),
}
CHANNEL_LABELS = {
    ChannelKind.EMAIL: _l("Email"),
    ChannelKind.PORTAL: _l("Portal"),
    ChannelKind.CHAT: _l("Chat"),
}
KIND_LABELS = {
    MessageKind.EMAIL: _l("Email"),
    MessageKind.PORTAL: _l("Portal"),
    MessageKind.CHAT: _l("Chat"),
    MessageKind.NOTE: _l("Internal note"),
    MessageKind.SYSTEM: _l("System"),
}
DELIVERY_LABELS = {
    DeliveryStatus.QUEUED: _l("Queued"),
    DeliveryStatus.SENDING: _l("Sending"),
    DeliveryStatus.SENT: _l("Sent"),
    DeliveryStatus.FAILED: _l("Failed"),
}

IDENTITY_LABELS = {
    IdentityKind.EMAIL: _l("Email"),
    IdentityKind.CHAT: _l("Chat visitor"),
    IdentityKind.PORTAL: _l("Portal login"),
}


def identity_label(value: Any) -> str:
    return str(IDENTITY_LABELS.get(IdentityKind(value), value))


def status_label(value: Any) -> str:
    return str(STATUS_LABELS.get(TicketStatus(value), value))


def priority_label(value: Any) -> str:
    return str(PRIORITY_LABELS.get(Priority(int(value)), value))


def channel_label(value: Any) -> str:
    return str(CHANNEL_LABELS.get(ChannelKind(value), value))


def kind_label(value: Any) -> str:
    return str(KIND_LABELS.get(MessageKind(value), value))


def delivery_label(value: Any) -> str:
    return str(DELIVERY_LABELS.get(DeliveryStatus(value), value)) if value else ""


def datetime_filter(value: datetime | None, fmt: str = "medium") -> str:
    """In the reader's time zone, with the locale's digits (helpdesk.i18n)."""
    return format_datetime(value, fmt)


def ago(value: datetime | None) -> str:
    return format_ago(value, utcnow())


def register(app: Flask) -> None:
    app.jinja_env.filters.update(
        status_label=status_label,
        priority_label=priority_label,
        channel_label=channel_label,
        kind_label=kind_label,
        delivery_label=delivery_label,
        identity_label=identity_label,
        datetime=datetime_filter,
        date=format_date,
        time=format_time,
        ago=ago,
        number=format_number,
        percent=format_percent,
    )

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "get_locale": get_locale,
            "format_number": format_number,
            "reader_timezone": lambda: str(get_timezone()),
            "LANGUAGE_NAMES": LANGUAGE_NAMES,
            "STATUSES": list(TicketStatus),
            "PRIORITIES": list(Priority),
            "CHANNELS": list(ChannelKind),
        }
