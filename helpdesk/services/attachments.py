"""Attachment storage: files on disk under their content hash, rows in the database.

Files are written before the transaction commits; because the name is the content hash, a
rolled-back write leaves at worst an unreferenced file, never a row pointing at nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from flask import current_app

from helpdesk.models import Attachment, Message

_SAFE_NAME_MAX = 200


def storage_dir() -> Path:
    return Path(current_app.config["ATTACHMENTS_DIR"])


def path_for(sha256: str) -> Path:
    return storage_dir() / sha256[:2] / sha256[2:4] / sha256


def store_bytes(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = path_for(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temp file and rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest


def read_bytes(sha256: str) -> bytes:
    return path_for(sha256).read_bytes()


def clean_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    name = "".join(ch for ch in name if ch.isprintable())
    return (name or "attachment")[:_SAFE_NAME_MAX]


def add_attachment(
    message: Message,
    filename: str,
    content_type: str,
    data: bytes,
    *,
    content_id: str | None = None,
    inline: bool = False,
) -> Attachment:
    digest = store_bytes(data)
    attachment = Attachment(
        filename=clean_filename(filename),
        content_type=(content_type or "application/octet-stream")[:255],
        size=len(data),
        sha256=digest,
        content_id=content_id.strip("<>") if content_id else None,
        inline=inline,
    )
    message.attachments.append(attachment)
    return attachment


def attachment_url(attachment: Attachment) -> str:
    """The app-relative download URL (checked against the viewer's access when served)."""
    return f"/attachments/{attachment.id}/{quote(attachment.filename)}"
