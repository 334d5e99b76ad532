"""Encryption of stored secrets (IMAP/SMTP passwords, OAuth2 tokens) with the instance secret.

Values are Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key derived from ``SECRET_KEY``
with HKDF, so the database alone (a leaked backup) reveals no mailbox password. Stored values
carry a ``fernet:`` prefix so a setting can tell "encrypted" from "not set".

Rotating ``SECRET_KEY`` makes stored secrets unreadable: :class:`SecretError` says so, and the
admin enters the passwords again. Nothing here ever logs or formats a clear value.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

PREFIX = "fernet:"


class SecretError(Exception):
    """A stored secret cannot be decrypted (the instance secret changed)."""


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    # A purpose-bound key: the same SECRET_KEY also signs sessions and Message-IDs, and a key
    # derived for "channel secrets" cannot be confused with either.
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"helpdesk channel secrets v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _current_key(secret_key: str | None) -> str:
    return secret_key if secret_key is not None else str(current_app.config["SECRET_KEY"])


def encrypt(value: str, secret_key: str | None = None) -> str:
    """The stored form of ``value``."""
    token = _fernet(_current_key(secret_key)).encrypt(value.encode("utf-8"))
    return PREFIX + token.decode("ascii")


def decrypt(stored: str | None, secret_key: str | None = None) -> str | None:
    """The clear value of a stored secret; ``None`` when none is stored."""
    if not stored:
        return None
    if not stored.startswith(PREFIX):
        raise SecretError("stored secret is not encrypted")
    try:
        clear = _fernet(_current_key(secret_key)).decrypt(stored[len(PREFIX) :].encode("ascii"))
    except (InvalidToken, ValueError):
        raise SecretError(
            "stored secret cannot be decrypted (was the instance SECRET_KEY changed?)"
        ) from None
    return clear.decode("utf-8")


def is_encrypted(stored: object) -> bool:
    return isinstance(stored, str) and stored.startswith(PREFIX)
