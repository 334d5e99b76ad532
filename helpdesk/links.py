"""The helpdesk's public address, for links in mail and in anything read away from the page.

In order:

1. ``BASE_URL`` (``HELPDESK_BASE_URL``) when set: the address people reach the helpdesk at
   (behind a proxy, with https). Set it in production.
2. In a request from a signed-in agent, the address that request came to (their browser sent it,
   so it is one they can reach). A request from anyone else does not choose where links in mail
   point: a forged ``Host`` header on a sign-in link request would otherwise send a customer's
   link to the forger's site.
3. The address ``helpdesk serve`` listens on (``SERVED_URL``, set by ``serve`` and passed to the
   worker process it starts).
4. ``http://127.0.0.1:5000``, the default of ``helpdesk serve``; one-off commands with no server
   (``helpdesk mail fetch --once``) say so in the log once.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, has_request_context, request
from flask_login import current_user

DEFAULT = "http://127.0.0.1:5000"
log = logging.getLogger(__name__)
_warned = False


def served_url(host: str, port: int) -> str:
    """The address a server bound to ``host``:``port`` is reached at, for people and links."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a name to show, not a bind)
        # Every interface: this machine's own address works here; others need BASE_URL.
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def base_url(app: Flask | None = None) -> str:
    config = (app or current_app).config
    configured = str(config.get("BASE_URL") or "").strip()
    if configured:
        return configured.rstrip("/")
    if has_request_context() and getattr(current_user, "is_agent", False):
        return request.host_url.rstrip("/")
    served = str(config.get("SERVED_URL") or "").strip()
    if served:
        return served.rstrip("/")
    global _warned
    if not _warned:
        _warned = True
        log.warning("HELPDESK_BASE_URL is not set: links in mail point at %s", DEFAULT)
    return DEFAULT
