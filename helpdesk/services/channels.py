"""Configured channels (email accounts, the chat widget): enabling, deleting, their visible
health, and telling whoever watches them that they changed.

Channel-specific settings are the channel's own business (``channels/email/accounts.py`` for
mailboxes, ``channels/chat`` for the widget); this module only knows the row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Channel, ChannelStatus
from helpdesk.services.effects import on_commit
from helpdesk.services.errors import NotFound

_MAX_ERROR = 2000

# --- telling channel watchers about changes ------------------------------------------------------

_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def on_channels_changed(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener()`` after every commit that changed a channel; returns an unsubscriber.

    In-process; ``helpdesk serve`` forwards it to its worker process. A separately run
    ``helpdesk worker`` notices within ``MAIL_CHANNEL_REFRESH_SECONDS`` by comparing
    :func:`watch_fingerprint`.
    """
    with _listeners_lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def notify_channels_changed() -> None:
    """Tell this process's listeners that channels changed (after a commit here, or when the
    web process says so to its worker process)."""
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener()


def changed(session: Session) -> None:
    """Tell the listeners after this transaction commits."""
    on_commit(session, notify_channels_changed)


def set_active(channel: Channel, active: bool) -> None:
    channel.active = active
    if not active:
        channel.status = ChannelStatus.DISABLED
    elif channel.status == ChannelStatus.DISABLED:
        channel.status = ChannelStatus.UNKNOWN


def set_channel_active(session: Session, channel: Channel, active: bool) -> Channel:
    """Disable (the worker stops watching it) or enable a channel; settings are kept."""
    set_active(channel, active)
    changed(session)
    return channel


def delete_channel(session: Session, channel: Channel) -> None:
    """Remove a channel and its checkpoints; its tickets and quarantined mail stay (unlinked)."""
    session.delete(channel)
    session.flush()
    changed(session)


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


def record_success(session: Session, channel: Channel) -> None:
    channel.status = ChannelStatus.OK
    channel.last_success_at = utcnow()


def record_error(session: Session, channel: Channel, error: str) -> None:
    channel.status = ChannelStatus.ERROR
    channel.last_error = error[:_MAX_ERROR]
    channel.last_error_at = utcnow()
