"""Configuration: defaults -> instance config file -> ``HELPDESK_*`` environment variables.

Every key below can be set in ``<instance>/helpdesk.cfg`` (Python syntax, like Flask's
``from_pyfile``) or in the environment as ``HELPDESK_<KEY>``; environment wins. Values from the
environment are parsed as JSON when they look like it (``HELPDESK_WORKER_ENABLED=false``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask


class Defaults:
    # Database: SQLite in the instance folder unless told otherwise.
    DATABASE_URL: str | None = None
    SQL_ECHO = False

    # Where the search index and attachments live; defaults to the instance folder.
    DATA_DIR: str | None = None

    SECRET_KEY: str | None = None
    # argon2 parameters: "default" (RFC 9106) or "cheapest" (test suites only).
    PASSWORD_HASH_PROFILE = "default"  # noqa: S105 - a profile name, not a password

    # Languages offered in the UI; the first is the default.
    LANGUAGES = ("en", "bn")
    BABEL_DEFAULT_LOCALE = "en"
    # The instance's time zone (IANA name): dates on pages and in mails for everyone who has
    # not chosen their own (agents choose theirs on their profile page).
    TIMEZONE = "UTC"

    # Sessions and cookies.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # set True behind HTTPS (documented in README)
    WTF_CSRF_TIME_LIMIT = None  # token valid for the session: long ticket replies must not fail

    # Rate limits (Flask-Limiter). memory:// is right for one process; use redis:// when scaled.
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_LOGIN = "10 per minute;50 per hour"
    RATELIMIT_HEADERS_ENABLED = True

    # Socket.IO across processes (redis://...); None in the embedded default.
    MESSAGE_QUEUE: str | None = None
    SOCKETIO_CORS_ORIGINS: list[str] | str | None = None
    # Engine.IO: a ping every PING_INTERVAL s, a client that has not answered for PING_TIMEOUT s
    # more is gone. A frame larger than MAX_FRAME_BYTES closes the connection (Engine.IO's
    # max_http_buffer_size), so it stays well above the largest event a client may send (a chat
    # line of 20,000 characters is < 100 kB of JSON; larger lines get a "too_long" error
    # acknowledgement instead of a dropped connection: docs/chat-protocol.md).
    SOCKETIO_PING_INTERVAL = 25.0
    SOCKETIO_PING_TIMEOUT = 20.0
    SOCKETIO_MAX_FRAME_BYTES = 4 * 1024 * 1024

    # Worker: in-process loop for `helpdesk serve`; `helpdesk worker` runs it alone.
    WORKER_ENABLED = True
    WORKER_POLL_SECONDS = 2.0
    OUTBOX_MAX_ATTEMPTS = 8
    OUTBOX_BACKOFF_BASE_SECONDS = 30.0
    OUTBOX_LEASE_SECONDS = 120.0

    # Webhooks (docs/webhooks.md). Hosts (``host`` or ``host:port``, comma-separated) a webhook
    # may call although they are loopback, private or link-local addresses; none by default.
    WEBHOOK_ALLOWED_HOSTS = ""
    WEBHOOK_BACKOFF_BASE_SECONDS = 10.0  # the first retry; doubling up to the maximum
    WEBHOOK_BACKOFF_MAX_SECONDS = 3600.0
    WEBHOOK_RETRY_HOURS = 24.0  # a delivery is retried this long, then given up ("dead")
    # Disabled (with a mail to the admins) after this many failed attempts in a row that
    # span at least this many hours.
    WEBHOOK_DISABLE_AFTER_FAILURES = 20
    WEBHOOK_DISABLE_AFTER_HOURS = 24.0
    WEBHOOK_LEASE_SECONDS = 60.0  # a worker that died mid-send is taken over after this
    WEBHOOK_CONNECT_TIMEOUT = 5.0
    WEBHOOK_READ_TIMEOUT = 10.0
    WEBHOOK_RESPONSE_MAX_BYTES = 64 * 1024
    WEBHOOK_CONCURRENCY = 32  # deliveries in flight per worker process
    WEBHOOK_POLL_SECONDS = 0.2  # how often the worker's webhook loop looks for new events
    WEBHOOK_LOG_DAYS = 30.0  # delivered and dead deliveries are kept this long

    # Outbound mail when no email channel supplies SMTP settings. With no SMTP host, mail is
    # written to <instance>/mail-outbox/*.eml so the demo works with no mail server at all.
    SMTP_HOST: str | None = None
    SMTP_PORT = 25
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_SECURITY = "none"  # none | starttls | ssl
    SMTP_TIMEOUT = 30.0
    MAIL_FROM = "support@helpdesk.invalid"
    MAIL_FROM_NAME = "Helpdesk"

    # Attachments
    MAX_CONTENT_LENGTH = 40 * 1024 * 1024
    ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024

    QUEUE_PAGE_SIZE = 50
    # The public address used in links in mail (e.g. https://support.example.com). Unset, it is
    # derived from where `helpdesk serve` listens (see helpdesk/links.py); set it in production.
    BASE_URL: str | None = None


def _coerce(value: str) -> Any:
    import json

    try:
        return json.loads(value)
    except ValueError:
        return value


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    app.config.from_object(Defaults)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    cfg_file = instance / "helpdesk.cfg"
    if cfg_file.exists():
        app.config.from_pyfile(str(cfg_file))
    for key, value in os.environ.items():
        if key.startswith("HELPDESK_") and key != "HELPDESK_INSTANCE_PATH":
            app.config[key.removeprefix("HELPDESK_")] = _coerce(value)
    if overrides:
        app.config.update(overrides)

    # The remember-me cookie is a long-lived sign-in: it gets the session cookie's protection
    # unless set on its own (Flask-Login's defaults would leave it without Secure).
    for name in ("SECURE", "HTTPONLY", "SAMESITE"):
        app.config.setdefault(f"REMEMBER_COOKIE_{name}", app.config[f"SESSION_COOKIE_{name}"])
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
    data_dir = Path(app.config.get("DATA_DIR") or instance)
    data_dir.mkdir(parents=True, exist_ok=True)
    app.config["DATA_DIR"] = str(data_dir)
    app.config.setdefault("ATTACHMENTS_DIR", str(data_dir / "attachments"))
    app.config.setdefault("INDEX_DIR", str(data_dir / "index"))
    app.config.setdefault("MAIL_OUTBOX_DIR", str(instance / "mail-outbox"))

    from helpdesk.i18n import is_timezone

    if not is_timezone(app.config.get("TIMEZONE")):
        raise ValueError(
            f"TIMEZONE {app.config.get('TIMEZONE')!r} is not an IANA time zone (e.g. Asia/Dhaka)"
        )
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance)


def _instance_secret(instance: Path) -> str:
    """Generate the secret once into the instance folder (mode 0600) and reuse it."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (web or worker) won the race
        return path.read_text().strip()
    try:
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    return key
