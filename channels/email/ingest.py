"""Raw mail through the whole inbound path: parse -> filters -> ``receive`` -> follow-ups.

Two steps. *Prepare* (:mod:`channels.email.prepare`) is pure: parsing, the filters, the
language guess and the attachment limit need no database, so they run before the transaction,
and for big batches in parser processes on every core (:func:`start_prepare`). *Store* runs in the
caller's transaction: :func:`process_batch` for a fetched batch, :func:`process_mail` for one
mail (a replay, a test).

Neither raises for a bad mail: whatever goes wrong (bytes that are not a mail, a sender that is
not an address, a bug) ends with the raw bytes in quarantine with the error, inside the
caller's transaction, and the other mails stored. The caller (the IMAP fetcher, a replay) owns
that transaction and commits it together with the mailbox checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.orm import Session

from channels.email import services as mail_service
from channels.email.prepare import (
    Prepared,
    PrepareSettings,
    Unparsable,
    bounce_report,
    exit_with_parent,
    prepare_chunk,
    prepare_safely,
    warm,
)
from channels.email.services import PipelineResult
from helpdesk.inbound import InboundMessage
from helpdesk.models import Channel
from helpdesk.services.customers import normalize_email
from helpdesk.services.errors import ServiceError
from helpdesk.services.inbound import (
    PostReceiveStep,
    Received,
    receive_or_hold,
)
from helpdesk.services.inbound_batch import prefetch, receive_batch

log = logging.getLogger("helpdesk.mail")


def own_addresses(channel: Channel | None) -> set[str]:
    """Addresses mail from which is our own mail coming back (a loop)."""
    found = {str(current_app.config.get("MAIL_FROM") or "").lower()}
    if channel is not None and channel.address:
        found.add(channel.address.lower())
    return {a for a in found if a}


def prepare_settings(channel: Channel | None) -> PrepareSettings:
    return PrepareSettings(
        own_addresses=frozenset(own_addresses(channel)),
        attachment_max_bytes=int(current_app.config["ATTACHMENT_MAX_BYTES"]),
        store_dir=str(current_app.config["ATTACHMENTS_DIR"]),
    )


def _from_channel(msg: InboundMessage, channel: Channel | None, as_person: bool = False) -> None:
    """What the mailbox asks of the tickets its mail opens (the post-receive chain does it).

    Automatic mail (auto-replies, lists, bounces, our own mail coming back) only continues a
    conversation: when it continues none it is held, not queued (:func:`_hold`). ``as_person``
    (an admin replaying held mail) takes it for a person's mail whatever the filters said.
    """
    if as_person:
        msg.auto_submitted = msg.is_bounce = False
    msg.thread_only = msg.auto_submitted or msg.is_bounce
    msg.channel_id = channel.id if channel is not None else None
    if channel is not None:
        msg.team_id = channel.team_id
        # Never acknowledge automatic mail: two autoresponders answering each other is a loop.
        msg.acknowledge = bool((channel.settings or {}).get("acknowledge")) and not (
            msg.auto_submitted or msg.is_bounce
        )


# --- mail's steps of the post-receive chain (registered by channels.registry) -----------------


def _record_bounce(session: Session, msg: InboundMessage, received: Received | None) -> None:
    """A bounce report marks the reply it reports on as failed."""
    bounce = bounce_report(msg)
    if bounce is not None:
        mail_service.record_bounce(
            session,
            original_message_id=bounce.get("original_message_id"),
            recipient=bounce.get("recipient"),
            status=bounce.get("status"),
            diagnostic=bounce.get("diagnostic"),
        )


def _acknowledge(session: Session, msg: InboundMessage, received: Received) -> None:
    """A new ticket from a mailbox that acknowledges: the customer hears we have it."""
    if received.created:
        mail_service.queue_acknowledgement(session, received.ticket, received.message)


POST_RECEIVE_STEPS = (
    PostReceiveStep("email.bounce", 5, lambda msg: msg.is_bounce, _record_bounce),
    PostReceiveStep("email.acknowledge", 30, lambda msg: msg.acknowledge, _acknowledge),
)


def _outcome(received: Received, redone: bool = False) -> PipelineResult:
    if received.duplicate:
        return PipelineResult(received.message, None, duplicate=True, redone=redone)
    return PipelineResult(received.message, None, created=received.created, redone=redone)


def _hold(
    session: Session,
    held: Sequence[tuple[Mail, InboundMessage]],
    channel: Channel | None,
    folder: str | None,
    redone: bool = False,
) -> list[PipelineResult]:
    """Automatic mail that continues no conversation: kept for the admin, no ticket."""
    items = mail_service.hold_automatic(
        session,
        [
            mail_service.Automatic(
                mail.raw, str(msg.meta.get("auto_reason") or "automatic"), mail.uid
            )
            for mail, msg in held
        ],
        channel_id=channel.id if channel is not None else None,
        folder=folder,
    )
    for (mail, msg), item in zip(held, items, strict=True):
        if msg.is_bounce:
            # A report on mail we sent that is no ticket message (a portal sign-in link): the
            # address still bounces.
            _record_bounce(session, msg, None)
        log.debug("mail uid=%s is automatic mail (%s): held", mail.uid, item.error)
    return [PipelineResult(None, item, redone=redone) for item in items]


def process_mail(
    session: Session,
    raw: bytes,
    channel: Channel | None,
    *,
    folder: str | None = None,
    uid: int | None = None,
    as_person: bool = False,
) -> PipelineResult:
    """Ingest one mail in a savepoint of the caller's transaction, or quarantine it.

    ``as_person``: a person's mail whatever the filters say (see :func:`_from_channel`)."""
    raw = bytes(raw)
    return _one(
        session,
        Mail(uid, raw),
        prepare_safely(raw, prepare_settings(channel)),
        channel,
        folder,
        as_person=as_person,
    )


@dataclass(frozen=True, slots=True)
class Mail:
    uid: int | None
    raw: bytes


def _one(
    session: Session,
    mail: Mail,
    prepared: Prepared,
    channel: Channel | None,
    folder: str | None,
    *,
    as_person: bool = False,
    redone: bool = False,
) -> PipelineResult:
    """One prepared mail in its own savepoint; whatever fails sends it to quarantine."""
    if isinstance(prepared, Unparsable):
        return _quarantine(session, mail, prepared, channel, folder)
    prepared.raw = mail.raw
    # What the mail registered on the unit of work inside its savepoint goes if the savepoint
    # rolls back (helpdesk/unit_of_work.py).
    try:
        with session.begin_nested():
            _from_channel(prepared, channel, as_person)
            received = receive_or_hold(session, prepared)
            if received is None:
                return _hold(session, [(mail, prepared)], channel, folder, redone)[0]
            return _outcome(received, redone)
    except ServiceError as exc:
        failure = Unparsable(f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        # A bug or a database refusal for this one mail: keep it for replay, go on with the
        # next one. The worker never dies on bad mail.
        failure = Unparsable(f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return _quarantine(session, mail, failure, channel, folder, redone)


def _quarantine(
    session: Session,
    mail: Mail,
    failure: Unparsable,
    channel: Channel | None,
    folder: str | None,
    redone: bool = False,
) -> PipelineResult:
    if failure.trace is not None:
        log.error(
            "mail uid=%s on channel %s could not be processed\n%s",
            mail.uid,
            _name(channel),
            failure.trace,
        )
    item = mail_service.quarantine(
        session,
        mail.raw,
        failure.error,
        channel_id=channel.id if channel is not None else None,
        folder=folder,
        uid=mail.uid,
    )
    log.warning("mail uid=%s quarantined as #%s: %s", mail.uid, item.id, failure.error[:200])
    return PipelineResult(None, item, redone=redone)


def process_batch(
    session: Session,
    mails: Sequence[Mail],
    prepared: Sequence[Prepared],
    channel: Channel | None,
    *,
    folder: str | None = None,
) -> list[PipelineResult]:
    """Ingest a batch of prepared mails in the caller's transaction, quarantining bad ones.

    The fast path runs the whole batch in one savepoint with its lookups read up front (one
    query each for duplicates, threads and customers). Mail that could not be parsed never
    gets that far: it is quarantined first. Only when something fails inside the batch is the
    savepoint rolled back and the batch redone one savepoint per mail, so the failing mail is
    quarantined and the others are stored, exactly as :func:`process_mail` would.
    """
    results: dict[int, PipelineResult] = {}
    good: list[tuple[int, InboundMessage]] = []
    for index, (mail, item) in enumerate(zip(mails, prepared, strict=True)):
        if isinstance(item, InboundMessage) and (refused := _refused_sender(item)) is not None:
            # Refused before anything is written for it: quarantined alone, instead of failing
            # the whole batch and sending it down the one-mail-at-a-time path.
            item = refused
        if isinstance(item, Unparsable):
            results[index] = _quarantine(session, mail, item, channel, folder)
        else:
            item.raw = mail.raw
            _from_channel(item, channel)
            good.append((index, item))
    if good:
        try:
            with session.begin_nested():
                msgs = [msg for _i, msg in good]
                received = receive_batch(
                    session,
                    msgs,
                    prefetch(session, msgs),
                    # A bounce report changes the message it reports on: one at a time.
                    single=lambda msg: msg.is_bounce,
                )
                done = {
                    index: _outcome(got)
                    for (index, _msg), got in zip(good, received, strict=True)
                    if got is not None
                }
                held = [
                    (index, msg)
                    for (index, msg), got in zip(good, received, strict=True)
                    if got is None
                ]
                if held:
                    outcomes = _hold(session, [(mails[i], msg) for i, msg in held], channel, folder)
                    done.update(zip([i for i, _msg in held], outcomes, strict=True))
        except Exception as exc:
            log.warning("batch of %d mails failed (%s): retrying one by one", len(good), exc)
            done = {
                index: _one(session, mails[index], msg, channel, folder, redone=True)
                for index, msg in good
            }
        results.update(done)
    return [results[index] for index in range(len(mails))]


def _refused_sender(msg: InboundMessage) -> Unparsable | None:
    """What ``receive`` would refuse this mail for before writing anything: a sender that is no
    address (``From: Nobody``, ``undisclosed-recipients:;``, no From at all)."""
    try:
        normalize_email(msg.sender_address)
    except ServiceError as exc:
        return Unparsable(f"{type(exc).__name__}: {exc}")
    return None


def _name(channel: Channel | None) -> str:
    return channel.name if channel is not None else "-"


def pipeline(
    session: Session, raw: bytes, channel: Channel | None, as_person: bool = False
) -> PipelineResult:
    """The pipeline as registered with ``services.mail`` (used for quarantine replay)."""
    return process_mail(session, raw, channel, as_person=as_person)


# --- parsing in worker processes -----------------------------------------------------------

# Parsing is pure CPU in Python (the GIL serialises it with the database work), so big batches
# are parsed in processes on every core while this process stores the previous batch.
_pool: ProcessPoolExecutor | None = None
_pool_ready: Future[None] | None = None  # done once the processes have started
_pool_retry_at = 0.0  # after a broken pool, parse here until then
_POOL_RETRY_SECONDS = 300.0
_POOL_WAIT_SECONDS = 1.0  # how long a big batch waits for parser processes that are starting
_pool_lock = threading.Lock()


def _ready_executor(workers: int) -> ProcessPoolExecutor | None:
    """The parser processes when they are ready; else ``None`` (and they are started).

    Starting them (spawn + importing the parser) takes a fraction of a second; a big batch
    waits up to ``_POOL_WAIT_SECONDS`` for them (:func:`start_prepare`), and is parsed here
    if they are not up by then (a loaded machine).
    """
    global _pool, _pool_ready
    with _pool_lock:
        if time.monotonic() < _pool_retry_at:
            return None
        if _pool is None:
            # spawn, not fork: the serving process runs threads (web, Socket.IO, IDLE watchers)
            # and a forked child would inherit locks held by them.
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=exit_with_parent,
            )
            # Processes start on demand, one per submit that finds none idle: one warm-up
            # each starts them all now, while they can be told to skip the parent's __main__.
            with _children_main_is_prepare():
                started = [_pool.submit(warm) for _ in range(workers)]
            _pool_ready = started[-1]
        assert _pool_ready is not None
        if not _pool_ready.done():
            return None
        if _pool_ready.exception() is not None:
            pool = _pool
            _discard_pool_locked()
            pool.shutdown(wait=False, cancel_futures=True)
            return None
        return _pool


@contextlib.contextmanager
def _children_main_is_prepare() -> Iterator[None]:
    """Spawned children first import the parent's ``__main__`` (multiprocessing's rule): in
    ``helpdesk serve``/``worker`` or a script that imports the app, that is the whole app,
    0.5 s per process before it parses anything. While the processes are started, ``__main__``
    names :mod:`channels.email.prepare` instead, which imports only the parser and filters
    (0.1 s). Only the start of a process reads this, and it happens under ``_pool_lock``.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    import channels.email.prepare as prepare_module

    saved = getattr(main, "__spec__", None)
    main.__spec__ = prepare_module.__spec__
    try:
        yield
    finally:
        main.__spec__ = saved


def start_parsers(workers: int) -> None:
    """Start the parser processes in the background if they are not running (returns at once):
    a watcher calls it when it has mailboxes, so the first backlog is parsed in them."""
    if workers >= 1:
        _ready_executor(workers)


def warm_parsers(workers: int, timeout: float | None = None) -> bool:
    """Start the parser processes (if not yet) and wait until they are up; true when they are.

    A long-running worker can call this at start so its first big fetch is already parsed in
    them; tests use it to take the parser-process path for certain.
    """
    _ready_executor(workers)
    with _pool_lock:
        ready = _pool_ready
    if ready is None:
        return False
    try:
        ready.result(timeout=timeout)
    except Exception:
        return False
    return _ready_executor(workers) is not None


def _discard_pool_locked() -> None:
    global _pool, _pool_ready, _pool_retry_at
    log.warning("mail parser processes failed; parsing in this process for a while")
    _pool, _pool_ready = None, None
    _pool_retry_at = time.monotonic() + _POOL_RETRY_SECONDS


def _discard_pool() -> None:
    with _pool_lock:
        pool = _pool
        _discard_pool_locked()
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


class PendingPrepare:
    """A batch being prepared: in parser processes (started at once) or here (on demand)."""

    def __init__(
        self,
        mails: Sequence[Mail],
        settings: PrepareSettings,
        futures: list[Future[list[Prepared]]] | None,
    ) -> None:
        self.mails = list(mails)
        self.settings = settings
        self._futures = futures

    @property
    def in_processes(self) -> bool:
        return self._futures is not None

    def results(self) -> list[Prepared]:
        if self._futures is not None:
            try:
                return [item for future in self._futures for item in future.result()]
            except BrokenExecutor:
                # A parser process died (killed, out of memory): parse here, start afresh later.
                _discard_pool()
        return [prepare_safely(mail.raw, self.settings) for mail in self.mails]


def start_prepare(
    mails: Sequence[Mail], settings: PrepareSettings, *, workers: int, pool_min: int
) -> PendingPrepare:
    """Start preparing ``mails``: in ``workers`` processes when there are at least
    ``pool_min`` of them (a single mail from IDLE is parsed faster here than sent away)."""
    if workers < 1 or len(mails) < max(pool_min, 1):
        return PendingPrepare(mails, settings, None)
    try:
        pool = _ready_executor(workers)
        if pool is None and warm_parsers(workers, timeout=_POOL_WAIT_SECONDS):
            # Starting: they are ready a fraction of a second after the start (they import only
            # the parser), sooner than this process would parse a batch of this size itself.
            pool = _ready_executor(workers)
        if pool is None:
            return PendingPrepare(mails, settings, None)
        # A few chunks per process: one pickling round trip per chunk, not per mail.
        size = max(1, -(-len(mails) // (workers * 2)))
        futures = [
            pool.submit(prepare_chunk, [mail.raw for mail in mails[i : i + size]], settings)
            for i in range(0, len(mails), size)
        ]
    except (BrokenExecutor, RuntimeError):  # shut down or broken: parse here instead
        _discard_pool()
        futures = None
    return PendingPrepare(mails, settings, futures)
