"""Webhooks' settings: the ``WEBHOOK_*`` keys (docs/webhooks.md#configuration) with their
defaults, read from the app's configuration."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from helpdesk.services import webhook_http

DEFAULTS: dict[str, Any] = {
    "WEBHOOK_ALLOWED_HOSTS": "",
    "WEBHOOK_BACKOFF_BASE_SECONDS": 10.0,
    "WEBHOOK_BACKOFF_MAX_SECONDS": 3600.0,
    "WEBHOOK_RETRY_HOURS": 24.0,
    "WEBHOOK_DISABLE_AFTER_FAILURES": 20,
    "WEBHOOK_DISABLE_AFTER_HOURS": 24.0,
    "WEBHOOK_LEASE_SECONDS": 60.0,
    "WEBHOOK_CONNECT_TIMEOUT": 5.0,
    "WEBHOOK_READ_TIMEOUT": 10.0,
    "WEBHOOK_RESPONSE_MAX_BYTES": 64 * 1024,
    "WEBHOOK_CONCURRENCY": 32,
    "WEBHOOK_POLL_SECONDS": 0.2,
    "WEBHOOK_LOG_DAYS": 30.0,
}


def setting(app: Flask | None, key: str) -> Any:
    config = (app or current_app).config
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


def allowed_hosts(app: Flask | None = None) -> set[str]:
    return webhook_http.allowed_hosts(setting(app, "WEBHOOK_ALLOWED_HOSTS"))
