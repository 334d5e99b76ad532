"""The chat channel's settings as an admin edits them: checked, then saved on the Channel row.

The settings live where the chat code reads them (``Channel.settings`` of the ``chat`` channel,
over the ``CHAT_*`` configuration defaults; see :class:`helpdesk.services.chat.ChatSettings`).
Nothing commits here; the admin page commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import Agent, Channel, Team
from helpdesk.services import audit
from helpdesk.services.chat import _DAYS, configure_chat_channel
from helpdesk.services.errors import ServiceError

DAYS = _DAYS
_RANGE = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*$")
OFFER_TIMEOUT_MAX = 3600
AWAY_AFTER_MAX = 20


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


def form_values(session: Session, channel: Channel | None, settings: Any) -> ChatConfig:
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
        timezone=str(hours.get("timezone", "UTC")),
        weekly=weekly,
        team_id=channel.team_id if channel else None,
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
    )
    channel.team_id = team.id if team else None  # configure_chat_channel cannot clear it
    audit.record(session, None, actor, "chat.settings", channel_id=channel.id)
    session.flush()
    return channel
