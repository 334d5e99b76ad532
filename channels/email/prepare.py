"""Preparing mail: parsing, the filters, the language guess and the attachment limit.

Pure (no database, no Flask app), so it runs before the transaction, and for big batches in
parser processes (:mod:`channels.email.ingest` starts them). Kept apart from the ingest so
that a parser process imports only the parser and its filters: it starts in a fraction of
the time (importing the ingest pulls in Flask, SQLAlchemy and every model, ~0.8 s of CPU per
process, which a cold fetch on two cores paid while it was already parsing).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from channels.email.filters import FilterContext, apply_filters
from channels.email.parser import MailParseError, parse_mail
from helpdesk.inbound import InboundAttachment, InboundMessage

_BENGALI = re.compile(r"[\u0980-\u09FF]")


def _limit_attachments(msg: InboundMessage, max_bytes: int) -> None:
    """Attachments over the limit are not stored as files; the ticket says so.

    The raw message (kept for download) still holds them, so nothing is lost; the agent sees
    the name and size and where to find it.
    """
    kept: list[InboundAttachment] = []
    over: list[dict[str, Any]] = []
    for attachment in msg.attachments:
        if len(attachment.data) > max_bytes:
            over.append(
                {
                    "filename": attachment.filename,
                    "size": len(attachment.data),
                    "content_type": attachment.content_type,
                }
            )
        else:
            kept.append(attachment)
    if over:
        msg.attachments = kept
        msg.meta["attachments_over_limit"] = over
        msg.meta["attachment_limit"] = max_bytes


def _drop_nul(msg: InboundMessage) -> None:
    """NUL characters out of everything stored as text. Mail carries them (broken clients,
    spam, a charset decoded wrongly); PostgreSQL refuses them in text and JSON, so one such
    mail failed its whole batch there, and then went to quarantine instead of the queue."""

    def clean(value: str) -> str:
        return value.replace("\x00", "") if "\x00" in value else value

    msg.subject = clean(msg.subject)
    msg.text = clean(msg.text)
    if msg.full_text is not None:
        msg.full_text = clean(msg.full_text)
    if msg.html is not None:
        msg.html = clean(msg.html)
    if msg.sender_name is not None:
        msg.sender_name = clean(msg.sender_name)
    msg.sender_address = clean(msg.sender_address)
    msg.cc = [clean(address) for address in msg.cc]
    msg.references = [clean(ref) for ref in msg.references]
    if msg.message_id is not None:
        msg.message_id = clean(msg.message_id)
    if msg.in_reply_to is not None:
        msg.in_reply_to = clean(msg.in_reply_to)
    headers = msg.meta.get("headers")
    if isinstance(headers, dict):
        msg.meta["headers"] = {k: clean(str(v)) for k, v in headers.items()}
    defects = msg.meta.get("parse_defects")
    if isinstance(defects, list):
        msg.meta["parse_defects"] = [clean(str(d)) for d in defects]


# The columns they are stored in (messages.subject, messages.message_id / in_reply_to):
# PostgreSQL refuses a longer value, which failed the mail's whole batch and then sent the mail
# to quarantine. A longer subject is garbage or an attack; a longer id matches nothing anyway.
_MAX_SUBJECT = 500
_MAX_ID = 998


def _clip(msg: InboundMessage) -> None:
    msg.subject = msg.subject[:_MAX_SUBJECT]
    if msg.message_id is not None:
        msg.message_id = msg.message_id[:_MAX_ID]
    if msg.in_reply_to is not None:
        msg.in_reply_to = msg.in_reply_to[:_MAX_ID]
    msg.references = [ref[:_MAX_ID] for ref in msg.references]


@dataclass(frozen=True, slots=True)
class PrepareSettings:
    """What parsing needs to know of the app and the channel; plain data, so it pickles."""

    own_addresses: frozenset[str]
    attachment_max_bytes: int
    # The attachment store: parser processes write the raw mail and its attachments there
    # (content-addressed, so storing them again in the transaction finds them written).
    store_dir: str | None = None


def prepare_mail(raw: bytes, settings: PrepareSettings) -> InboundMessage:
    """Parse one mail and annotate it (filters, language, attachment limit): no database.

    Pure, so it runs outside the transaction and in parser processes. Raises
    :class:`MailParseError` when ``raw`` is not a mail.
    """
    msg = parse_mail(raw)
    _drop_nul(msg)
    _clip(msg)
    apply_filters(msg, FilterContext(own_addresses=set(settings.own_addresses)))
    if msg.language is None and _BENGALI.search(f"{msg.subject}\n{msg.text[:2000]}"):
        # Mail says nothing reliable about its language; a Bengali-script mail gets Bengali
        # acknowledgements and replies (an explicit customer setting still wins).
        msg.language = "bn"
    _limit_attachments(msg, settings.attachment_max_bytes)
    bounce = bounce_report(msg)
    if bounce and bounce.get("original_message_id") and not msg.in_reply_to:
        # A report carries no In-Reply-To; naming the mail that bounced threads the report
        # onto that ticket instead of opening one for MAILER-DAEMON.
        msg.in_reply_to = str(bounce["original_message_id"])
    return msg


@dataclass(frozen=True, slots=True)
class Unparsable:
    """Why a mail could not be prepared; ``trace`` is set for bugs (not for bad mail)."""

    error: str
    trace: str | None = None


Prepared = InboundMessage | Unparsable


def prepare_safely(raw: bytes, settings: PrepareSettings) -> Prepared:
    """:func:`prepare_mail` that returns the error instead of raising (for parser processes)."""
    try:
        return prepare_mail(raw, settings)
    except MailParseError as exc:
        return Unparsable(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a parser bug on this one mail: keep the mail, report the bug
        return Unparsable(f"{type(exc).__name__}: {exc}", traceback.format_exc())


def _prepare_in_process(raw: bytes, settings: PrepareSettings) -> Prepared:
    prepared = prepare_safely(raw, settings)
    if settings.store_dir:
        files = (
            [a.data for a in prepared.attachments] if isinstance(prepared, InboundMessage) else []
        )
        _prestore(settings.store_dir, [raw, *files])
    if isinstance(prepared, InboundMessage):
        prepared.raw = None  # the caller has the bytes: do not send them back through the pipe
    return prepared


def _prestore(directory: str, blobs: list[bytes]) -> None:
    """Write files the transaction will store, here, where a core is free (a parser process).

    The layout of ``helpdesk.services.attachments`` (``<dir>/ab/cd/<sha256>``, written to a
    temporary file and renamed), so ``store_bytes`` in the transaction finds each file written
    and does not write it again; one that failed here (disk full) is written, and its error
    reported, in the transaction. Not imported from there: that module's imports are what a
    parser process must not pay for. ``tests/channels/email/test_batch.py`` checks both agree.
    """
    try:
        for blob in blobs:
            digest = hashlib.sha256(blob).hexdigest()
            path = Path(directory) / digest[:2] / digest[2:4] / digest
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError:
        return


def bounce_report(msg: InboundMessage) -> dict[str, Any] | None:
    bounce = msg.meta.get("bounce")
    return bounce if isinstance(bounce, dict) else None


def prepare_chunk(raws: list[bytes], settings: PrepareSettings) -> list[Prepared]:
    return [_prepare_in_process(raw, settings) for raw in raws]


def exit_with_parent() -> None:
    """Initializer of a parser process: end when the process that started it ends.

    A parser process waits on its call queue, which it holds both ends of, so it would never
    notice a parent killed with -9 (the OOM killer, a crash of serve's worker process): it
    would live on as an orphan, and one more set of them with every restart.
    """
    import multiprocessing
    import os
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def warm() -> None:
    """Runs in a parser process: done means the processes are up and have imported us."""
