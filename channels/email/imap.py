"""IMAP in: checkpointed fetching and IDLE push, one thread per mailbox.

Fetching (:class:`MailboxFetcher`): select the folder, compare its UIDVALIDITY with the
stored checkpoint, ask for the UIDs after the last one read (``UNSEEN`` on the very first run,
everything when UIDVALIDITY changed: dedupe by Message-ID makes that resync safe), download
``BODY.PEEK[]`` in batches of ``MAIL_FETCH_BATCH`` and store each batch with
:func:`channels.email.ingest.process_batch`. One transaction per batch holds the batch's
tickets/messages *and* the new checkpoint, so a crash re-reads only uncommitted mail (and dedupe
absorbs any repeat). Only after the commit are the mails flagged ``\\Seen`` (or moved to the
configured folder). The next batch is downloaded and handed to the parser processes before the
current one is stored, so parsing on the other cores overlaps the database work here.

Push (:class:`MailboxWatcher`): IDLE in one-second ``idle_check`` polls grouped in slices
(``MAIL_IDLE_SLICE_SECONDS``, 30 s). IMAPClient's ``idle_check`` swallows EOF and returns
``[]`` at once, forever, on a dead connection; so a slice ends early when a check returns
nothing before its timeout, and every slice ends with DONE + NOOP, which raises on a dead
socket. No IDLE outlives a slice, far under the 10-minute re-IDLE bound. Any error reconnects
with exponential backoff, and every (re)connect starts with a full fetch from the checkpoint,
so mail that arrived while we were away is caught up. Servers without IDLE are polled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Flask
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy.orm import Session

from channels.email import accounts as channel_service
from channels.email import oauth2
from channels.email import services as mail_service
from channels.email.ingest import (
    Mail,
    PendingPrepare,
    PrepareSettings,
    prepare_settings,
    process_batch,
    start_parsers,
    start_prepare,
)
from channels.email.oauth2 import TokenSource
from helpdesk.extensions import db
from helpdesk.models import Channel, ChannelKind
from helpdesk.services import channels as core_channels

log = logging.getLogger("helpdesk.mail")

SEEN = b"\\Seen"


class ConnectionLost(IMAPClientError):
    """The server said BYE or the socket died under an IDLE."""


@dataclass(repr=False)
class ImapSettings:
    host: str
    port: int
    user: str
    password: str | None = None
    oauth2_token: str | None = None
    security: str = "none"
    folder: str = "INBOX"
    move_to: str | None = None
    timeout: float = 60.0
    oauth2: TokenSource | None = None  # XOAUTH2 with refreshed access tokens

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return (
            f"ImapSettings({self.user!r}@{self.host}:{self.port}, security={self.security!r}, "
            f"folder={self.folder!r})"
        )

    @classmethod
    def of(cls, channel: Channel, timeout: float = 60.0) -> ImapSettings:
        imap = (channel.settings or {}).get("imap") or {}
        return cls(
            host=str(imap.get("host") or ""),
            port=int(imap.get("port") or 143),
            user=str(imap.get("user") or channel.address or ""),
            password=channel_service.secret(channel, "imap", "password"),
            oauth2_token=channel_service.secret(channel, "imap", "oauth2_token"),
            security=str(imap.get("security") or "none"),
            folder=str(imap.get("folder") or "INBOX"),
            move_to=imap.get("move_to") or None,
            timeout=timeout,
            oauth2=oauth2.source_for(channel) if imap.get("auth") == "oauth2" else None,
        )


def connect(settings: ImapSettings) -> IMAPClient:
    """A logged-in client (SSL, STARTTLS or plain; password or XOAUTH2)."""
    context = ssl.create_default_context()
    client = IMAPClient(
        settings.host,
        port=settings.port,
        ssl=settings.security == "ssl",
        ssl_context=context if settings.security == "ssl" else None,
        timeout=settings.timeout,
    )
    try:
        if settings.security == "starttls":
            client.starttls(context)
        if settings.oauth2 is not None:
            oauth2.imap_login(client, settings.user, settings.oauth2)
        elif settings.oauth2_token:
            client.oauth2_login(settings.user, settings.oauth2_token)
        else:
            client.login(settings.user, settings.password or "")
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # already dead: closing the socket is all that is left
        with contextlib.suppress(Exception):
            client.shutdown()


@dataclass
class FetchResult:
    fetched: int = 0
    created: int = 0
    duplicates: int = 0
    quarantined: int = 0  # could not be processed
    held: int = 0  # automatic mail of no conversation, held for the admin (no ticket)
    redone_batches: int = 0  # batches that failed and were stored one mail at a time
    uids: list[int] = field(default_factory=list)

    def add(self, other: FetchResult) -> None:
        self.fetched += other.fetched
        self.created += other.created
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.held += other.held
        self.redone_batches += other.redone_batches
        self.uids.extend(other.uids)


BatchCallback = Callable[[FetchResult], None]


def parse_workers(app: Flask) -> int:
    """How many parser processes big fetches use (``MAIL_PARSE_WORKERS``, default one a core)."""
    return int(app.config.get("MAIL_PARSE_WORKERS", os.cpu_count() or 1))


class MailboxFetcher:
    """Reads new mail of one channel's folder into tickets, from its checkpoint."""

    def __init__(
        self,
        app: Flask,
        channel_id: int,
        *,
        on_batch: BatchCallback | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.app = app
        self.channel_id = channel_id
        # Set: finish the batch being stored and return (a long backlog need not be drained
        # before the worker can stop); the rest is read from the checkpoint next time.
        self.stop = stop
        self.batch_size = int(app.config.get("MAIL_FETCH_BATCH", 200))
        self.parse_workers = parse_workers(app)
        self.parse_pool_min = int(app.config.get("MAIL_PARSE_POOL_MIN", 32))
        self.on_batch = on_batch

    def settings(self) -> ImapSettings:
        with self.app.app_context(), db.transaction(self.app) as session:
            channel = self._channel(session)
            return ImapSettings.of(channel, float(self.app.config.get("MAIL_IMAP_TIMEOUT", 60)))

    def prepare_settings(self) -> PrepareSettings:
        with self.app.app_context(), db.transaction(self.app) as session:
            return prepare_settings(self._channel(session))

    def _channel(self, session: Session) -> Channel:
        channel = session.get(Channel, self.channel_id)
        if channel is None or channel.kind != ChannelKind.EMAIL:
            raise LookupError(f"email channel {self.channel_id} is gone")
        return channel

    def fetch(self, client: IMAPClient, *, since: date | None = None) -> FetchResult:
        settings = self.settings()
        info = client.select_folder(settings.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        with self.app.app_context(), db.transaction(self.app) as session:
            checkpoint = mail_service.get_checkpoint(session, self.channel_id, settings.folder)
            last = checkpoint.last_uid if checkpoint is not None else None
            known_validity = checkpoint.uidvalidity if checkpoint is not None else None
        if since is not None:
            # A backfill window: everything in it, whatever the checkpoint says; mail already
            # stored is recognised by its Message-ID and skipped.
            uids = client.search(["SINCE", since])
        elif last is None:
            uids = client.search(["UNSEEN"])
        elif known_validity != uidvalidity:
            log.warning(
                "UIDVALIDITY of %s changed (%s -> %s): resyncing by Message-ID",
                settings.folder,
                known_validity,
                uidvalidity,
            )
            uids = client.search(["ALL"])
        else:
            # "n:*" always matches the highest UID even when it is below n.
            uids = [u for u in client.search(["UID", f"{last + 1}:*"]) if u > last]
        total = FetchResult()
        ordered = sorted(int(u) for u in uids)
        if len(ordered) >= max(self.parse_pool_min, 1):
            # A backlog (a one-off `mail fetch`, a first connect): the parser processes start
            # now, while the first batch downloads, instead of when it is to be parsed.
            start_parsers(self.parse_workers)
        prepare = self.prepare_settings() if ordered else None
        pending: tuple[list[int], PendingPrepare] | None = None
        for start in range(0, len(ordered), self.batch_size):
            chunk = ordered[start : start + self.batch_size]
            assert prepare is not None
            # Download the next batch and start parsing it before storing the previous one.
            upcoming = (chunk, self._download(client, chunk, prepare))
            if pending is not None:
                self._store_batch(client, settings, uidvalidity, *pending, total)
            if self.stop is not None and self.stop.is_set():
                # Not the end-of-fetch checkpoint below: on a first run it would jump past the
                # mail not read yet.
                return total
            pending = upcoming
        if pending is not None:
            self._store_batch(client, settings, uidvalidity, *pending, total)
        # The checkpoint also moves when nothing was read: on a first run to the folder's
        # current end (mail that arrives later has a higher UID), after a UIDVALIDITY change to
        # the new numbering.
        if last is None:
            floor = int(info.get(b"UIDNEXT", 1)) - 1
        elif known_validity != uidvalidity:
            floor = 0
        else:
            floor = last
        self._healthy(uidvalidity, settings.folder, floor)
        return total

    def _download(
        self, client: IMAPClient, uids: list[int], prepare: PrepareSettings
    ) -> PendingPrepare:
        response = client.fetch(uids, ["BODY.PEEK[]"])
        mails = [
            Mail(uid, bytes(raw))
            for uid in uids
            # None: expunged between SEARCH and FETCH
            if (raw := response.get(uid, {}).get(b"BODY[]")) is not None
        ]
        return start_prepare(
            mails, prepare, workers=self.parse_workers, pool_min=self.parse_pool_min
        )

    def _store_batch(
        self,
        client: IMAPClient,
        settings: ImapSettings,
        uidvalidity: int,
        uids: list[int],
        pending: PendingPrepare,
        total: FetchResult,
    ) -> None:
        result = self._batch(client, settings, uidvalidity, uids, pending)
        total.add(result)
        if self.on_batch is not None:
            self.on_batch(result)

    def _batch(
        self,
        client: IMAPClient,
        settings: ImapSettings,
        uidvalidity: int,
        uids: list[int],
        pending: PendingPrepare,
    ) -> FetchResult:
        prepared = pending.results()
        result = FetchResult()
        with self.app.app_context(), db.transaction(self.app) as session:
            channel = self._channel(session)
            outcomes = process_batch(
                session, pending.mails, prepared, channel, folder=settings.folder
            )
            for mail, outcome in zip(pending.mails, outcomes, strict=True):
                result.fetched += 1
                result.uids.append(int(mail.uid or 0))
                if outcome.held:
                    result.held += 1
                elif outcome.quarantined is not None:
                    result.quarantined += 1
                elif outcome.duplicate:
                    result.duplicates += 1
                elif outcome.created:
                    result.created += 1
            result.redone_batches = int(any(outcome.redone for outcome in outcomes))
            mail_service.set_checkpoint(
                session, self.channel_id, settings.folder, uidvalidity, max(uids)
            )
            core_channels.record_success(session, channel)
        # Committed: now, and only now, tell the server we have it.
        if settings.move_to:
            if client.has_capability("MOVE"):
                client.move(uids, settings.move_to)
            else:
                client.copy(uids, settings.move_to)
                client.delete_messages(uids)
                client.expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()
        else:
            client.add_flags(uids, [SEEN], silent=True)
        return result

    def _healthy(self, uidvalidity: int, folder: str, last: int) -> None:
        with self.app.app_context(), db.transaction(self.app) as session:
            channel = self._channel(session)
            mail_service.set_checkpoint(session, self.channel_id, folder, uidvalidity, last)
            core_channels.record_success(session, channel)


def record_error(app: Flask, channel_id: int, error: str) -> None:
    try:
        with app.app_context(), db.transaction(app) as session:
            channel = session.get(Channel, channel_id)
            if channel is not None:
                core_channels.record_error(session, channel, error)
    except Exception:
        log.exception("could not record the health of channel %s", channel_id)


def fetch_once(
    app: Flask, channel_id: int, *, since: date | None = None, on_batch: BatchCallback | None = None
) -> FetchResult:
    """Connect, fetch what is new (or the ``since`` window), disconnect."""
    fetcher = MailboxFetcher(app, channel_id, on_batch=on_batch)
    try:
        client = connect(fetcher.settings())
        try:
            return fetcher.fetch(client, since=since)
        finally:
            _close(client)
    except Exception as exc:
        record_error(app, channel_id, _describe(exc))
        raise


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class MailboxWatcher(threading.Thread):
    """IDLE push for one mailbox until ``stop`` is set; reconnects with backoff."""

    def __init__(
        self,
        app: Flask,
        channel_id: int,
        stop: threading.Event,
        *,
        on_batch: BatchCallback | None = None,
    ) -> None:
        super().__init__(name=f"helpdesk-imap-{channel_id}", daemon=True)
        self.app = app
        self.channel_id = channel_id
        self.stop_event = stop
        self.fetcher = MailboxFetcher(app, channel_id, on_batch=on_batch, stop=stop)
        config = app.config
        self.slice_seconds = float(config.get("MAIL_IDLE_SLICE_SECONDS", 30))
        self.poll_seconds = float(config.get("MAIL_POLL_SECONDS", 60))
        self.backoff_base = float(config.get("MAIL_RECONNECT_BASE_SECONDS", 1))
        self.backoff_max = float(config.get("MAIL_RECONNECT_MAX_SECONDS", 300))
        self.connections = 0  # successful (re)connects, for tests and the logs
        self.connected = threading.Event()

    def run(self) -> None:
        delay = self.backoff_base
        while not self.stop_event.is_set():
            client: IMAPClient | None = None
            try:
                client = connect(self.fetcher.settings())
                self.connections += 1
                delay = self.backoff_base
                # Full resync after every (re)connect: what arrived while away is caught up.
                self.fetcher.fetch(client)
                self.connected.set()
                if client.has_capability("IDLE"):
                    self._idle(client)
                else:
                    self._poll(client)
            except LookupError:
                return  # the channel was deleted
            except Exception as exc:
                self.connected.clear()
                if self.stop_event.is_set():
                    break
                log.warning(
                    "mailbox %s: %s; reconnecting in %.1fs", self.channel_id, _describe(exc), delay
                )
                record_error(self.app, self.channel_id, _describe(exc))
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                if client is not None:
                    _close(client)
        self.connected.clear()

    def _poll(self, client: IMAPClient) -> None:
        while not self.stop_event.wait(self.poll_seconds):
            self.fetcher.fetch(client)

    def _idle(self, client: IMAPClient) -> None:
        while not self.stop_event.is_set():
            client.idle()
            news = False
            began = time.monotonic()
            try:
                while not self.stop_event.is_set():
                    remaining = self.slice_seconds - (time.monotonic() - began)
                    if remaining <= 0:
                        break
                    timeout = min(1.0, remaining)
                    checked = time.monotonic()
                    responses = client.idle_check(timeout=timeout)
                    if _has_bye(responses):
                        raise ConnectionLost("server said BYE")
                    if _has_news(responses):
                        news = True
                        break
                    if not responses and time.monotonic() - checked < timeout / 2:
                        # Nothing, early: idle_check hit EOF and swallowed it. NOOP will tell.
                        break
            finally:
                if self.stop_event.is_set():
                    _text, extra = _idle_done_quietly(client)
                else:
                    _text, extra = client.idle_done()
            if self.stop_event.is_set():
                return
            if _has_bye(extra):
                raise ConnectionLost("server said BYE")
            if news or _has_news(extra):
                self.fetcher.fetch(client)
            else:
                client.noop()  # raises on a dead connection: reconnect


def _idle_done_quietly(client: IMAPClient) -> tuple[Any, list[Any]]:
    try:
        result: tuple[Any, list[Any]] = client.idle_done()
        return result
    except Exception:
        return None, []


def _has_news(responses: list[Any]) -> bool:
    return any(
        isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses
    )


def _has_bye(responses: list[Any]) -> bool:
    return any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses)


class MailWatchers(threading.Thread):
    """Keeps one :class:`MailboxWatcher` per active email channel, until ``stop`` is set.

    Re-reads the channel list every ``MAIL_CHANNEL_REFRESH_SECONDS``, and at once after a
    channel is changed in this process (:func:`core_channels.on_channels_changed`): a channel
    added in the admin UI starts being watched, a disabled or deleted one stops, and one whose
    IMAP or OAuth2 settings changed (:func:`channel_service.watch_fingerprint`) is restarted
    with the new settings, all without restarting the worker.
    """

    def __init__(
        self,
        app: Flask,
        stop: threading.Event,
        channel_ids: list[int] | None = None,
        *,
        on_batch: BatchCallback | None = None,
    ) -> None:
        super().__init__(name="helpdesk-imap-watchers", daemon=True)
        self.app = app
        self.stop_event = stop
        self.only = channel_ids
        self.on_batch = on_batch
        self.refresh = float(app.config.get("MAIL_CHANNEL_REFRESH_SECONDS", 30))
        # channel id -> (watcher, its stop event, the settings fingerprint it started with)
        self.watchers: dict[int, tuple[MailboxWatcher, threading.Event, str]] = {}
        self.wake = threading.Event()
        self.synced = threading.Condition()  # notified after every sync (tests await it)
        self.syncs = 0

    def _wanted(self) -> dict[int, str]:
        with self.app.app_context(), db.transaction(self.app) as session:
            wanted = {
                c.id: channel_service.watch_fingerprint(c)
                for c in channel_service.email_channels(session, active_only=True)
            }
        if self.only is not None:
            wanted = {k: v for k, v in wanted.items() if k in self.only}
        return wanted

    def run(self) -> None:
        unsubscribe = core_channels.on_channels_changed(self.wake.set)
        try:
            while True:
                try:
                    self._sync(self._wanted())
                except Exception:
                    log.exception("could not read the email channels")
                if self._pause():
                    break
        finally:
            unsubscribe()
            self._sync({})

    def _pause(self) -> bool:
        """Wait for the next refresh or a channel change; true when the worker stops."""
        deadline = time.monotonic() + self.refresh
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # Short waits: the worker's stop event cannot wake this one.
            if self.wake.wait(min(left, 0.5)):
                self.wake.clear()
                return self.stop_event.is_set()
        return True

    def _sync(self, wanted: dict[int, str]) -> None:
        if wanted:
            # Parser processes take a second to start: start them with the first mailbox, not
            # with its first big fetch (whose first batches would be parsed here meanwhile).
            start_parsers(parse_workers(self.app))
        for channel_id in list(self.watchers):
            watcher, stop, fingerprint = self.watchers[channel_id]
            if wanted.get(channel_id) != fingerprint or not watcher.is_alive():
                del self.watchers[channel_id]
                stop.set()
                watcher.join(timeout=15)
        for channel_id in wanted.keys() - self.watchers.keys():
            stop = threading.Event()
            watcher = MailboxWatcher(self.app, channel_id, stop, on_batch=self.on_batch)
            watcher.start()
            self.watchers[channel_id] = (watcher, stop, wanted[channel_id])
        with self.synced:
            self.syncs += 1
            self.synced.notify_all()


def start_watchers(app: Flask, stop: threading.Event) -> threading.Thread:
    """The worker's service hook: IDLE push for every active email channel."""
    watchers = MailWatchers(app, stop)
    watchers.start()
    return watchers
