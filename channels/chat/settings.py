"""The chat channel's settings: read (:class:`ChatSettings`, business hours) and written
(:func:`configure_chat_channel`, and the admin page's checked :func:`save_chat_config`).

They live on the ``Channel`` row of kind ``chat`` (``Channel.settings``), over the ``CHAT_*``
configuration defaults. What each setting does: docs/chat.md#settings. Nothing commits here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Agent, Calendar, Channel, ChannelKind, Team
from helpdesk.services import audit, business_hours
from helpdesk.services.business_hours import Schedule
from helpdesk.services.errors import ServiceError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*$")
OFFER_TIMEOUT_MAX = 3600
AWAY_AFTER_MAX = 20


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatSettings:
    """The chat channel's settings: the ``Channel`` row (kind ``chat``) over ``CHAT_*`` config.

    ``hours``: ``{"timezone": "Asia/Dhaka", "weekly": {"mon": ["09:00-17:00"], ...}}``; an empty
    mapping means always open. ``calendar_id``: opening hours from a business-hours calendar
    instead (its weekly hours and closed days, helpdesk/services/business_hours.py), the same
    calendars teams and SLA policies use; ``schedule`` is that calendar, read with the settings.
    ``allowed_origins``: sites that may embed the widget (the helpdesk's own origin always may);
    ``["*"]`` allows any.
    """

    channel_id: int | None = None
    team_id: int | None = None
    email_required: bool = False
    name_required: bool = False
    capacity: int = 3
    # Seconds an agent has to accept an offer before it moves on (0 = offers never time out);
    # after ``away_after_missed`` offers missed in a row the agent is set away (0 = never).
    offer_timeout: float = 30.0
    away_after_missed: int = 2
    transcript: bool = True  # visitors may ask for the transcript by email
    allowed_origins: tuple[str, ...] = ()
    hours: dict[str, Any] = field(default_factory=dict)
    calendar_id: int | None = None
    schedule: Schedule | None = None
    rate_limit: int = 20  # lines per rate window and connection
    rate_window: float = 10.0
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_types: tuple[str, ...] = ()


def chat_channel(session: Session) -> Channel | None:
    return session.scalar(
        select(Channel)
        .where(Channel.kind == ChannelKind.CHAT, Channel.active.is_(True))
        .order_by(Channel.id)
        .limit(1)
    )


def chat_settings(session: Session) -> ChatSettings:
    config = current_app.config
    channel = chat_channel(session)
    s: dict[str, Any] = dict(channel.settings or {}) if channel else {}

    def pick(key: str, default: Any) -> Any:
        return s.get(key, config.get(f"CHAT_{key.upper()}", default))

    calendar_id = s.get("calendar_id")
    calendar = session.get(Calendar, int(calendar_id)) if calendar_id else None
    origins = pick("allowed_origins", [])
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]
    return ChatSettings(
        channel_id=channel.id if channel else None,
        team_id=channel.team_id if channel else None,
        email_required=bool(pick("email_required", False)),
        name_required=bool(pick("name_required", False)),
        capacity=max(int(pick("capacity", 3)), 1),
        offer_timeout=max(float(pick("offer_timeout", 30.0)), 0.0),
        away_after_missed=max(int(pick("away_after_missed", 2)), 0),
        transcript=bool(pick("transcript", True)),
        allowed_origins=tuple(str(o).rstrip("/") for o in origins),
        hours=dict(pick("hours", {}) or {}),
        calendar_id=calendar.id if calendar else None,
        schedule=Schedule.of(calendar) if calendar else None,
        rate_limit=int(pick("rate_limit", 20)),
        rate_window=float(pick("rate_window", 10.0)),
        upload_max_bytes=int(pick("upload_max_bytes", 10 * 1024 * 1024)),
        upload_types=tuple(
            pick(
                "upload_types",
                ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
                 "text/plain"],
            )
        ),
    )  # fmt: skip


def configure_chat_channel(
    session: Session,
    *,
    name: str = "Chat",
    address: str | None = None,
    team: Team | None = None,
    **settings: Any,
) -> Channel:
    """Create or update the chat channel row (settings as in :class:`ChatSettings`)."""
    channel = chat_channel(session)
    if channel is None:
        channel = Channel(kind=ChannelKind.CHAT, name=name, settings={})
        session.add(channel)
    channel.address = address or channel.address
    channel.team_id = team.id if team else channel.team_id
    if "hours" in settings:
        _check_hours(settings["hours"] or {})
    channel.settings = {**(channel.settings or {}), **settings}
    session.flush()
    return channel


def instance_timezone() -> str:
    """Business hours with no zone of their own are in the installation's (``TIMEZONE``)."""
    return str(current_app.config.get("TIMEZONE") or "UTC") if has_app_context() else "UTC"


def _parse_range(text: str) -> tuple[time, time]:
    start, _sep, end = text.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def _check_hours(hours: dict[str, Any]) -> None:
    try:
        if hours:
            ZoneInfo(str(hours.get("timezone") or instance_timezone()))
            for day, ranges in dict(hours.get("weekly", {})).items():
                if day not in DAYS:
                    raise ValueError(day)
                for r in ranges:
                    _parse_range(r)
    except (ValueError, ZoneInfoNotFoundError, TypeError, AttributeError):
        raise ServiceError(_("Business hours are not valid.")) from None


def is_open(settings: ChatSettings, now: datetime | None = None) -> bool:
    """Within the channel's business hours (always, when none are set)."""
    if settings.schedule is not None:
        return business_hours.is_open(settings.schedule, now or utcnow())
    hours = settings.hours
    if not hours or not hours.get("weekly"):
        return True
    local = (now or utcnow()).astimezone(
        ZoneInfo(str(hours.get("timezone") or instance_timezone()))
    )
    for text in hours["weekly"].get(DAYS[local.weekday()], []):
        start, end = _parse_range(text)
        if start <= local.time().replace(tzinfo=None) < end:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The admin page: checked, then saved on the Channel row (the page commits)
# ---------------------------------------------------------------------------------------------


@dataclass
class ChatConfig:
    """What the admin page submits (already typed, not yet checked)."""

    email_required: bool = False
    name_required: bool = False
    capacity: int = 3
    offer_timeout: int = 30
    away_after_missed: int = 2
    transcript: bool = True
    allowed_origins: list[str] = field(default_factory=list)
    timezone: str = "UTC"
    weekly: dict[str, str] = field(default_factory=dict)  # day -> "09:00-13:00, 14:00-18:00"
    team_id: int | None = None
    calendar_id: int | None = None  # opening hours from this calendar instead of ``weekly``


def timezones() -> list[str]:
    return sorted(available_timezones())


def parse_ranges(day_label: str, text: str) -> list[str]:
    """``"09:00-13:00, 14:00-18:00"`` -> ``["09:00-13:00", "14:00-18:00"]`` (or a clear error)."""
    ranges: list[str] = []
    for part in re.split(r"[,;]", text or ""):
        if not part.strip():
            continue
        match = _RANGE.match(part)
        if not match or match.group(1, 2) >= match.group(3, 4) or match.group(3, 4) > ("24", "00"):
            raise ServiceError(
                _(
                    "%(day)s: write hours like 09:00-17:00 (several separated by commas).",
                    day=day_label,
                )
            )
        start, end = f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"
        # 24:00 means "until midnight"; time() has no 24:00, 23:59:59 ends the same minute.
        ranges.append(f"{start}-{'23:59:59' if end == '24:00' else end}")
    return ranges


def parse_origins(text: str) -> list[str]:
    """One site per line (or comma): ``https://shop.example[:port]``, or ``*`` for any site."""
    origins: list[str] = []
    for raw in re.split(r"[\s,]+", text or ""):
        if not raw:
            continue
        if raw == "*":
            origins.append("*")
            continue
        parts = urlsplit(raw)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ServiceError(
                _("%(origin)s is not a site address like https://shop.example.", origin=raw)
            )
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in origins:
            origins.append(origin)
    return origins


def form_values(session: Session, channel: Channel | None, settings: ChatSettings) -> ChatConfig:
    """The current settings, as the admin page shows them."""
    hours = settings.hours or {}
    weekly = {
        day: ", ".join(r.replace("23:59:59", "24:00") for r in hours.get("weekly", {}).get(day, []))
        for day in DAYS
    }
    return ChatConfig(
        email_required=settings.email_required,
        name_required=settings.name_required,
        capacity=settings.capacity,
        offer_timeout=int(settings.offer_timeout),
        away_after_missed=settings.away_after_missed,
        transcript=settings.transcript,
        allowed_origins=list(settings.allowed_origins),
        timezone=str(hours.get("timezone") or instance_timezone()),
        weekly=weekly,
        team_id=channel.team_id if channel else None,
        calendar_id=settings.calendar_id,
    )


def save_chat_config(
    session: Session, actor: Agent, config: ChatConfig, *, day_labels: dict[str, str]
) -> Channel:
    """Check every field, then write them all (nothing is saved when one is wrong)."""
    if not 1 <= config.capacity <= 50:
        raise ServiceError(_("Capacity must be between 1 and 50."))
    if config.offer_timeout != 0 and not 5 <= config.offer_timeout <= OFFER_TIMEOUT_MAX:
        raise ServiceError(
            _("The offer timeout must be 0 (never) or between 5 and %(max)d seconds.",
              max=OFFER_TIMEOUT_MAX)
        )  # fmt: skip
    if not 0 <= config.away_after_missed <= AWAY_AFTER_MAX:
        raise ServiceError(
            _("Missed offers before away must be between 0 (never) and %(max)d.",
              max=AWAY_AFTER_MAX)
        )  # fmt: skip
    if config.timezone not in available_timezones():
        raise ServiceError(_("Choose a time zone from the list."))
    weekly = {
        day: ranges
        for day in DAYS
        if (ranges := parse_ranges(day_labels.get(day, day), config.weekly.get(day, "")))
    }
    if config.calendar_id is not None and session.get(Calendar, config.calendar_id) is None:
        raise ServiceError(_("Choose a calendar from the list."))
    team = session.get(Team, config.team_id) if config.team_id is not None else None
    if config.team_id is not None and team is None:
        raise ServiceError(_("Choose a team from the list."))
    channel = configure_chat_channel(
        session,
        email_required=config.email_required,
        name_required=config.name_required,
        capacity=config.capacity,
        offer_timeout=config.offer_timeout,
        away_after_missed=config.away_after_missed,
        transcript=config.transcript,
        allowed_origins=config.allowed_origins,
        # No weekly hours = always open; the time zone is kept for the next time.
        hours={"timezone": config.timezone, "weekly": weekly},
        calendar_id=config.calendar_id,
    )
    channel.team_id = team.id if team else None  # configure_chat_channel cannot clear it
    audit.record(session, None, actor, "chat.settings", channel_id=channel.id)
    session.flush()
    return channel
