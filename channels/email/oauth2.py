"""OAuth2 (XOAUTH2) sign-in for IMAP and SMTP: access tokens from a refresh token.

A channel stores a token endpoint, a client id/secret and a refresh token (encrypted, see
:mod:`helpdesk.services.channels`). :class:`TokenSource` turns them into short-lived access
tokens with the refresh-token grant (RFC 6749 §6, a form POST with the standard library's
urllib: one request shape, not worth a dependency), keeps each token in memory until shortly
before it expires (:data:`REFRESH_MARGIN`), and gets a fresh one once when the server rejects a
login (a token revoked before its time). A refresh token the provider rotates (Microsoft does)
is handed to ``on_rotate`` so the channel keeps the newest one.

Tokens, secrets and refresh tokens never appear in a log line or an exception message: errors
carry the endpoint's ``error`` code and description only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from channels.email import accounts as channel_service
from channels.email.accounts import OAuth2Config
from helpdesk.extensions import db
from helpdesk.models import Channel

log = logging.getLogger("helpdesk.mail.oauth2")

# Refresh a token this long before it expires: a login must never race its expiry.
REFRESH_MARGIN = 60.0
_TIMEOUT = 20.0
_MAX_RESPONSE = 64 * 1024


class OAuth2Error(Exception):
    """The token endpoint refused or could not be reached; the text is safe to show and log.

    ``permanent`` is true when retrying cannot help (``invalid_grant``: the refresh token was
    revoked or expired, ``invalid_client``: wrong client id or secret).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class _Cached:
    access_token: str
    expires_at: float  # time.monotonic()


# Access tokens per (endpoint, client, refresh token digest), shared by the threads of a
# process: the IDLE watcher and the outbox of one channel use the same token.
_cache: dict[tuple[str, str, str], _Cached] = {}
_cache_lock = threading.Lock()


def _key(config: OAuth2Config, refresh_token: str) -> tuple[str, str, str]:
    secret = f"{refresh_token}\x00{config.client_secret or ''}"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return (config.token_url, config.client_id, digest)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


class TokenSource:
    """Access tokens for one OAuth2 configuration."""

    def __init__(
        self,
        config: OAuth2Config,
        *,
        on_rotate: Callable[[str], None] | None = None,
        margin: float = REFRESH_MARGIN,
        shared: bool = True,
    ) -> None:
        """``shared=False`` keeps tokens to this source (a connection test must prove that the
        entered settings obtain a token, not reuse one obtained earlier)."""
        self.config = config
        self.on_rotate = on_rotate
        self.margin = margin
        self._lock = threading.Lock()
        self._cache = _cache if shared else {}

    def __repr__(self) -> str:  # never a token in a log line
        return f"TokenSource({self.config!r})"

    def token(self, *, refresh: bool = False) -> str:
        """A valid access token; ``refresh`` forces a new one (after a rejected login)."""
        with self._lock:
            refresh_token = self.config.refresh_token
            if not refresh_token:
                raise OAuth2Error("no OAuth2 refresh token is configured", permanent=True)
            key = _key(self.config, refresh_token)
            now = time.monotonic()
            with _cache_lock:
                cached = self._cache.get(key)
            if cached is not None and not refresh and cached.expires_at - self.margin > now:
                return cached.access_token
            data = self._request(refresh_token)
            access_token = data["access_token"]
            expires_in = _seconds(data.get("expires_in"))
            entry = _Cached(access_token, now + expires_in)
            with _cache_lock:
                self._cache[key] = entry
            rotated = data.get("refresh_token")
            if isinstance(rotated, str) and rotated and rotated != refresh_token:
                self.config.refresh_token = rotated
                with _cache_lock:
                    self._cache[_key(self.config, rotated)] = entry
                if self.on_rotate is not None:
                    try:
                        self.on_rotate(rotated)
                    except Exception:
                        # The old refresh token stays valid for a while at every provider that
                        # rotates; failing to store the new one must not fail this login.
                        log.exception("could not store the rotated OAuth2 refresh token")
            return access_token

    def _request(self, refresh_token: str) -> dict[str, Any]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.config.client_id,
        }
        if self.config.client_secret:
            form["client_secret"] = self.config.client_secret
        if self.config.scope:
            form["scope"] = self.config.scope
        if urllib.parse.urlsplit(self.config.token_url).scheme not in ("https", "http"):
            raise OAuth2Error(
                "the OAuth2 token endpoint must be an https:// address", permanent=True
            )
        request = urllib.request.Request(  # noqa: S310 (scheme checked just above)
            self.config.token_url,
            data=urllib.parse.urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            # https, or http to loopback only: checked when the channel was saved.
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                body = response.read(_MAX_RESPONSE)
        except urllib.error.HTTPError as exc:
            raise _endpoint_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OAuth2Error(f"cannot reach the OAuth2 token endpoint: {reason}") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise OAuth2Error("the OAuth2 token endpoint did not answer with JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise OAuth2Error("the OAuth2 token endpoint answered without an access token")
        return data


def source_for(channel: Channel) -> TokenSource | None:
    """The channel's token source (inside an app context), or ``None`` without OAuth2 settings.

    A rotated refresh token is stored on the channel in a transaction of its own; callers ask
    for tokens outside their transactions (before IMAP login, in the outbox's send step).
    """
    config = channel_service.oauth2_config(channel)
    if config is None:
        return None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    channel_id = channel.id

    def store(refresh_token: str) -> None:
        with app.app_context(), db.transaction(app) as session:
            row = session.get(Channel, channel_id)
            if row is not None:
                channel_service.store_refresh_token(session, row, refresh_token)

    return TokenSource(config, on_rotate=store)


def _seconds(value: object) -> float:
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 3600.0  # RFC 6749 makes expires_in optional; an hour is what providers issue


def _endpoint_error(exc: urllib.error.HTTPError) -> OAuth2Error:
    code = ""
    description = ""
    try:
        data = json.loads(exc.read(_MAX_RESPONSE))
        if isinstance(data, dict):
            code = str(data.get("error") or "")
            description = str(data.get("error_description") or "")
    except (ValueError, OSError):
        pass
    finally:
        exc.close()
    detail = ": ".join(part for part in (code, description[:300]) if part)
    message = f"the OAuth2 token endpoint refused ({exc.code}{': ' + detail if detail else ''})"
    return OAuth2Error(message, permanent=code in ("invalid_grant", "invalid_client"))


def xoauth2_string(user: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's format), not base64."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def imap_login(client: IMAPClient, user: str, source: TokenSource) -> None:
    """XOAUTH2 login; once more with a fresh token when the server rejects the cached one."""
    try:
        client.oauth2_login(user, source.token())
    except LoginError:
        log.info("IMAP rejected the OAuth2 access token for %s; refreshing it once", user)
        client.oauth2_login(user, source.token(refresh=True))


def smtp_login(client: smtplib.SMTP, user: str, source: TokenSource) -> None:
    """SMTP ``AUTH XOAUTH2``; once more with a fresh token when the server rejects it."""
    try:
        _smtp_auth(client, user, source.token())
    except smtplib.SMTPAuthenticationError:
        log.info("SMTP rejected the OAuth2 access token for %s; refreshing it once", user)
        _smtp_auth(client, user, source.token(refresh=True))


def _smtp_auth(client: smtplib.SMTP, user: str, access_token: str) -> None:
    def respond(challenge: bytes | None = None) -> str:
        # A failed XOAUTH2 gets a 334 with an error JSON first; the client answers with an
        # empty line and then receives the 535 (Google's documented exchange).
        return xoauth2_string(user, access_token) if challenge is None else ""

    client.auth("XOAUTH2", respond, initial_response_ok=True)
