"""Mailboxes: adding and changing email accounts, their secrets and what their watchers
depend on (the row's generic side, enabling and health, is ``helpdesk/services/channels.py``).

An email channel's ``settings`` look like::

    {"imap": {"host", "port", "user", "password", "oauth2_token", "security", "folder",
              "move_to", "auth"},
     "smtp": {"host", "port", "user", "password", "security", "auth"} | absent,
     "oauth2": {"token_url", "client_id", "client_secret", "refresh_token", "scope"} | absent,
     "acknowledge": bool}

``auth`` is ``password`` or ``oauth2`` (XOAUTH2 with an access token obtained from the channel's
``oauth2`` refresh token; a fixed ``oauth2_token`` given on the command line also means XOAUTH2).
``password``, ``oauth2_token``, ``client_secret`` and ``refresh_token`` are stored encrypted
(:mod:`helpdesk.secrets`) and never returned by :func:`public_settings`, which is what lists,
JSON and logs may show.

Whoever watches mailboxes learns about changes through :func:`on_channels_changed` (after the
commit) and :func:`watch_fingerprint` (what an IMAP watcher depends on), so an edited or disabled
mailbox is restarted or stopped without restarting the worker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.models import MailCheckpoint
from helpdesk import secrets
from helpdesk.i18n import _
from helpdesk.models import Channel, ChannelKind, Team
from helpdesk.services.channels import changed, set_active
from helpdesk.services.customers import normalize_email
from helpdesk.services.errors import ServiceError

SECURITY_MODES = ("none", "starttls", "ssl")
AUTH_MODES = ("password", "oauth2")
_SECRET_FIELDS = ("password", "oauth2_token", "client_secret", "refresh_token")


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
    auth: str = "password"  # or "oauth2": XOAUTH2 with the channel's OAuth2Config

    def __repr__(self) -> str:
        return (
            f"ServerConfig(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"security={self.security!r}, auth={self.auth!r}, "
            f"password={'***' if self.password else None})"
        )


@dataclass(repr=False)
class OAuth2Config:
    """Where and how a channel gets XOAUTH2 access tokens: the refresh-token grant.

    ``repr`` is hand-written so the client secret and refresh token never reach a log line.
    """

    token_url: str
    client_id: str
    client_secret: str | None = None
    refresh_token: str | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        return f"OAuth2Config(token_url={self.token_url!r}, client_id={self.client_id!r})"


def check_server(side: str, cfg: ServerConfig) -> None:
    if not cfg.host or any(c.isspace() for c in cfg.host):
        raise ServiceError(_("The %(side)s host is missing or invalid.", side=side))
    if not 0 < int(cfg.port) < 65536:
        raise ServiceError(_("The %(side)s port must be between 1 and 65535.", side=side))
    if cfg.security not in SECURITY_MODES:
        raise ServiceError(_("Security must be none, starttls or ssl."))
    if cfg.auth not in AUTH_MODES:
        raise ServiceError(_("Sign-in must be password or oauth2."))


def check_oauth2(cfg: OAuth2Config, previous: dict[str, Any]) -> None:
    url = urlsplit(cfg.token_url or "")
    if url.scheme not in ("https", "http") or not url.hostname:
        raise ServiceError(_("The OAuth2 token endpoint must be an https:// address."))
    # The refresh token and client secret travel in the request body: only over TLS, except to
    # a token service on this very machine.
    if url.scheme == "http" and url.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ServiceError(_("The OAuth2 token endpoint must be an https:// address."))
    if not (cfg.client_id or "").strip():
        raise ServiceError(_("OAuth2 sign-in needs a client ID."))
    if not (cfg.refresh_token or previous.get("refresh_token")):
        raise ServiceError(_("OAuth2 sign-in needs a refresh token."))


def _server_settings(cfg: ServerConfig, *, imap: bool, previous: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": cfg.host.strip(),
        "port": int(cfg.port),
        "user": cfg.user or None,
        "security": cfg.security,
        "auth": cfg.auth,
    }
    if imap:
        data["folder"] = cfg.folder or "INBOX"
        data["move_to"] = cfg.move_to or None
    _keep_secrets(data, cfg, ("password", "oauth2_token"), previous)
    return data


def _keep_secrets(
    data: dict[str, Any], cfg: object, names: tuple[str, ...], previous: dict[str, Any]
) -> None:
    # A blank secret on an edit keeps the stored one: the form never shows it back.
    for name in names:
        value = getattr(cfg, name)
        if value:
            data[name] = secrets.encrypt(value)
        elif previous.get(name):
            data[name] = previous[name]


def _oauth2_settings(cfg: OAuth2Config, previous: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "token_url": cfg.token_url.strip(),
        "client_id": cfg.client_id.strip(),
        "scope": " ".join((cfg.scope or "").split()) or None,
    }
    _keep_secrets(data, cfg, ("client_secret", "refresh_token"), previous)
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
    oauth2: OAuth2Config | None = None,
    active: bool = True,
) -> Channel:
    name = _check_name(session, name, None)
    channel = Channel(kind=ChannelKind.EMAIL, name=name, settings={})
    _apply(
        session,
        channel,
        address=address,
        imap=imap,
        smtp=smtp,
        team=team,
        acknowledge=acknowledge,
        oauth2=oauth2,
    )
    session.add(channel)
    set_active(channel, active)
    session.flush()
    changed(session)
    return channel


def _check_name(session: Session, name: str, channel: Channel | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError(_("A channel needs a name."))
    if len(name) > 120:
        raise ServiceError(_("A channel name has at most 120 characters."))
    query = select(Channel.id).where(Channel.name == name)
    if channel is not None and channel.id is not None:
        query = query.where(Channel.id != channel.id)
    if session.scalar(query) is not None:
        raise ServiceError(_("A channel named %(name)s already exists.", name=name))
    return name


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
    oauth2: OAuth2Config | None = None,
    name: str | None = None,
) -> Channel:
    """Change an email channel; blank secrets keep the stored ones (forms never show them)."""
    if name is not None:
        channel.name = _check_name(session, name, channel)
    _apply(
        session,
        channel,
        address=address,
        imap=imap,
        smtp=smtp,
        team=team,
        acknowledge=acknowledge,
        oauth2=oauth2,
    )
    set_active(channel, active)
    changed(session)
    return channel


def store_refresh_token(session: Session, channel: Channel, refresh_token: str) -> None:
    """Keep a refresh token the provider rotated (Microsoft does on every use)."""
    settings = dict(channel.settings or {})
    oauth2 = dict(settings.get("oauth2") or {})
    if not oauth2:
        return
    oauth2["refresh_token"] = secrets.encrypt(refresh_token)
    settings["oauth2"] = oauth2
    channel.settings = settings


def _apply(
    session: Session,
    channel: Channel,
    *,
    address: str,
    imap: ServerConfig,
    smtp: ServerConfig | None,
    team: str | int | None,
    acknowledge: bool,
    oauth2: OAuth2Config | None,
) -> None:
    address = normalize_email(address)
    if not address or "@" not in address:
        raise ServiceError(_("Enter the support address, e.g. support@example.com."))
    check_server("IMAP", imap)
    if smtp is not None:
        check_server("SMTP", smtp)
    previous = channel.settings or {}
    settings: dict[str, Any] = {
        "imap": _server_settings(imap, imap=True, previous=previous.get("imap") or {}),
        "acknowledge": bool(acknowledge),
    }
    if smtp is not None:
        settings["smtp"] = _server_settings(smtp, imap=False, previous=previous.get("smtp") or {})
    uses_oauth2 = imap.auth == "oauth2" or (smtp is not None and smtp.auth == "oauth2")
    if oauth2 is not None and (uses_oauth2 or oauth2.token_url):
        check_oauth2(oauth2, previous.get("oauth2") or {})
        settings["oauth2"] = _oauth2_settings(oauth2, previous.get("oauth2") or {})
    elif uses_oauth2:
        if not previous.get("oauth2"):
            raise ServiceError(
                _("OAuth2 sign-in needs a token endpoint, a client ID and a refresh token.")
            )
        settings["oauth2"] = previous["oauth2"]
    stored_imap = settings["imap"]
    if imap.auth == "password" and not (
        stored_imap.get("password") or stored_imap.get("oauth2_token")
    ):
        raise ServiceError(_("Enter the IMAP password."))
    # A new dict, so SQLAlchemy sees the JSON column change.
    channel.settings = settings
    channel.address = address
    team_row = _team(session, team)
    channel.team_id = team_row.id if team_row is not None else None


def email_channels(session: Session, *, active_only: bool = False) -> list[Channel]:
    query = select(Channel).where(Channel.kind == ChannelKind.EMAIL).order_by(Channel.id)
    if active_only:
        query = query.where(Channel.active.is_(True))
    return list(session.scalars(query))


def secret(channel: Channel, side: str, name: str) -> str | None:
    """A decrypted secret of a channel (``side`` "imap"/"smtp", ``name`` "password"/...)."""
    return secrets.decrypt(((channel.settings or {}).get(side) or {}).get(name))


def oauth2_config(channel: Channel) -> OAuth2Config | None:
    """The channel's OAuth2 settings with secrets decrypted (for the token request only)."""
    data = (channel.settings or {}).get("oauth2") or {}
    if not data.get("token_url"):
        return None
    return OAuth2Config(
        token_url=str(data["token_url"]),
        client_id=str(data.get("client_id") or ""),
        client_secret=secret(channel, "oauth2", "client_secret"),
        refresh_token=secret(channel, "oauth2", "refresh_token"),
        scope=data.get("scope") or None,
    )


def with_stored_secrets(
    channel: Channel | None,
    imap: ServerConfig,
    smtp: ServerConfig | None,
    oauth2: OAuth2Config | None,
) -> tuple[ServerConfig, ServerConfig | None, OAuth2Config | None]:
    """The entered settings with blank secrets filled in from the stored channel.

    What "Test connection" tries on an edit form, where passwords are never shown back.
    """
    if channel is None:
        return imap, smtp, oauth2
    for side, cfg in (("imap", imap), ("smtp", smtp)):
        if cfg is None:
            continue
        for name in ("password", "oauth2_token"):
            if not getattr(cfg, name):
                setattr(cfg, name, secret(channel, side, name))
    stored = oauth2_config(channel)
    if oauth2 is None or not oauth2.token_url:
        oauth2 = stored
    elif stored is not None:
        oauth2.client_secret = oauth2.client_secret or stored.client_secret
        oauth2.refresh_token = oauth2.refresh_token or stored.refresh_token
    return imap, smtp, oauth2


def watch_fingerprint(channel: Channel) -> str:
    """A digest of what an IMAP watcher of ``channel`` depends on; a change means restart.

    The refresh token is left out: a provider that rotates it on every use would otherwise
    restart the watcher after every token refresh, for no change at all.
    """
    settings = channel.settings or {}
    oauth2 = {k: v for k, v in (settings.get("oauth2") or {}).items() if k != "refresh_token"}
    data = {"imap": settings.get("imap"), "oauth2": oauth2, "active": channel.active}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def public_settings(channel: Channel) -> dict[str, Any]:
    """Settings with secrets replaced by whether they are set: safe for lists, JSON and logs."""
    out: dict[str, Any] = {}
    for key, value in (channel.settings or {}).items():
        if isinstance(value, dict):
            out[key] = {k: (bool(v) if k in _SECRET_FIELDS else v) for k, v in value.items()}
        else:
            out[key] = value
    return out


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
