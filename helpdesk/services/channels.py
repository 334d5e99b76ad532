"""Configured channels: adding and changing email accounts, and their visible health.

An email channel's ``settings`` look like::

    {"imap": {"host", "port", "user", "password", "oauth2_token", "security", "folder",
              "move_to"},
     "smtp": {"host", "port", "user", "password", "security"} | absent,
     "acknowledge": bool}

``password`` and ``oauth2_token`` are stored encrypted (:mod:`helpdesk.secrets`) and never
returned by :func:`public_settings`, which is what lists, JSON and logs may show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk import secrets
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Channel, ChannelKind, ChannelStatus, MailCheckpoint, Team
from helpdesk.services.customers import normalize_email
from helpdesk.services.errors import NotFound, ServiceError

SECURITY_MODES = ("none", "starttls", "ssl")
_SECRET_FIELDS = ("password", "oauth2_token")
_MAX_ERROR = 2000


@dataclass(repr=False)
class ServerConfig:
    """One side (IMAP or SMTP) of an email account as an admin enters it.

    ``repr`` is hand-written so a password never reaches a log line or a traceback.
    """

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    security: str = "none"
    oauth2_token: str | None = None
    folder: str = "INBOX"
    move_to: str | None = None

    def __repr__(self) -> str:
        return (
            f"ServerConfig(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"security={self.security!r}, password={'***' if self.password else None})"
        )


def _check_server(side: str, cfg: ServerConfig) -> None:
    if not cfg.host or any(c.isspace() for c in cfg.host):
        raise ServiceError(_("The %(side)s host is missing or invalid.", side=side))
    if not 0 < int(cfg.port) < 65536:
        raise ServiceError(_("The %(side)s port must be between 1 and 65535.", side=side))
    if cfg.security not in SECURITY_MODES:
        raise ServiceError(_("Security must be none, starttls or ssl."))


def _server_settings(cfg: ServerConfig, *, imap: bool, previous: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": cfg.host.strip(),
        "port": int(cfg.port),
        "user": cfg.user or None,
        "security": cfg.security,
    }
    if imap:
        data["folder"] = cfg.folder or "INBOX"
        data["move_to"] = cfg.move_to or None
    # A blank secret on an edit keeps the stored one: the form never shows it back.
    for name in _SECRET_FIELDS:
        value = getattr(cfg, name)
        if value:
            data[name] = secrets.encrypt(value)
        elif previous.get(name):
            data[name] = previous[name]
    return data


def _team(session: Session, team: str | int | None) -> Team | None:
    if team in (None, ""):
        return None
    query = select(Team).where(
        Team.id == int(team) if isinstance(team, int) or str(team).isdigit() else Team.name == team
    )
    found = session.scalar(query)
    if found is None:
        raise ServiceError(_("No team named %(team)s.", team=team))
    return found


def add_email_channel(
    session: Session,
    name: str,
    *,
    address: str,
    imap: ServerConfig,
    smtp: ServerConfig | None = None,
    team: str | int | None = None,
    acknowledge: bool = False,
) -> Channel:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_("A channel needs a name."))
    if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise ServiceError(_("A channel named %(name)s already exists.", name=name))
    channel = Channel(kind=ChannelKind.EMAIL, name=name, settings={})
    _apply(
        session, channel, address=address, imap=imap, smtp=smtp, team=team, acknowledge=acknowledge
    )
    session.add(channel)
    session.flush()
    return channel


def update_email_channel(
    session: Session,
    channel: Channel,
    *,
    address: str,
    imap: ServerConfig,
    smtp: ServerConfig | None,
    team: str | int | None,
    acknowledge: bool,
    active: bool = True,
) -> Channel:
    _apply(
        session, channel, address=address, imap=imap, smtp=smtp, team=team, acknowledge=acknowledge
    )
    channel.active = active
    if not active:
        channel.status = ChannelStatus.DISABLED
    elif channel.status == ChannelStatus.DISABLED:
        channel.status = ChannelStatus.UNKNOWN
    return channel


def _apply(
    session: Session,
    channel: Channel,
    *,
    address: str,
    imap: ServerConfig,
    smtp: ServerConfig | None,
    team: str | int | None,
    acknowledge: bool,
) -> None:
    address = normalize_email(address)
    _check_server("IMAP", imap)
    if smtp is not None:
        _check_server("SMTP", smtp)
    previous = channel.settings or {}
    settings: dict[str, Any] = {
        "imap": _server_settings(imap, imap=True, previous=previous.get("imap") or {}),
        "acknowledge": bool(acknowledge),
    }
    if smtp is not None:
        settings["smtp"] = _server_settings(smtp, imap=False, previous=previous.get("smtp") or {})
    # A new dict, so SQLAlchemy sees the JSON column change.
    channel.settings = settings
    channel.address = address
    team_row = _team(session, team)
    channel.team_id = team_row.id if team_row is not None else None


def get_channel(session: Session, ident: str | int) -> Channel:
    query = select(Channel)
    if isinstance(ident, int) or str(ident).isdigit():
        query = query.where(Channel.id == int(ident))
    else:
        query = query.where(Channel.name == ident)
    channel = session.scalar(query)
    if channel is None:
        raise NotFound(_("Channel not found."))
    return channel


def email_channels(session: Session, *, active_only: bool = False) -> list[Channel]:
    query = select(Channel).where(Channel.kind == ChannelKind.EMAIL).order_by(Channel.id)
    if active_only:
        query = query.where(Channel.active.is_(True))
    return list(session.scalars(query))


def secret(channel: Channel, side: str, name: str) -> str | None:
    """A decrypted secret of a channel (``side`` "imap"/"smtp", ``name`` "password"/...)."""
    return secrets.decrypt(((channel.settings or {}).get(side) or {}).get(name))


def public_settings(channel: Channel) -> dict[str, Any]:
    """Settings with secrets replaced by whether they are set: safe for lists, JSON and logs."""
    out: dict[str, Any] = {}
    for key, value in (channel.settings or {}).items():
        if isinstance(value, dict):
            out[key] = {k: (bool(v) if k in _SECRET_FIELDS else v) for k, v in value.items()}
        else:
            out[key] = value
    return out


def record_success(session: Session, channel: Channel) -> None:
    channel.status = ChannelStatus.OK
    channel.last_success_at = utcnow()


def record_error(session: Session, channel: Channel, error: str) -> None:
    channel.status = ChannelStatus.ERROR
    channel.last_error = error[:_MAX_ERROR]
    channel.last_error_at = utcnow()


def channel_row(session: Session, channel: Channel) -> dict[str, Any]:
    """One channel for ``channel list`` and the admin page, health and checkpoints included."""
    checkpoints = session.scalars(
        select(MailCheckpoint).where(MailCheckpoint.channel_id == channel.id)
    ).all()
    return {
        "id": channel.id,
        "name": channel.name,
        "kind": channel.kind.value,
        "address": channel.address,
        "active": channel.active,
        "team_id": channel.team_id,
        "status": channel.status.value,
        "last_error": channel.last_error,
        "last_error_at": channel.last_error_at.isoformat() if channel.last_error_at else None,
        "last_success_at": (
            channel.last_success_at.isoformat() if channel.last_success_at else None
        ),
        "checkpoints": [
            {"folder": c.folder, "uidvalidity": c.uidvalidity, "last_uid": c.last_uid}
            for c in checkpoints
        ],
        "last_uid": max((c.last_uid for c in checkpoints), default=None),
        "settings": public_settings(channel),
    }
