"""Security headers on every response (issue 13, item 16).

HTML pages get a strict Content-Security-Policy: scripts, styles, fonts and frames from this
origin only (no inline script or style attribute anywhere in our templates; the JSON blocks
pages carry are data, not script), images also as ``data:`` (inline images of mail) and from the
web (remote images in mail, shown only when the agent asks), Socket.IO back to this host, forms
posting here only, and no page inside a frame: nothing of ours is meant to be framed. The chat
widget is embedded on other sites as a *script* (``/chat/widget.js``, drawing in a shadow root of
the host page), not a frame, so it needs no exception; a page that must be framed one day says
so explicitly with :func:`allow_framing`.

Every response gets ``X-Content-Type-Options: nosniff`` and a ``Referrer-Policy`` that never
sends a path to another site (ticket numbers and magic links are in paths).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, g, request

F = TypeVar("F", bound=Callable[..., Any])


def allow_framing(view: F) -> F:
    """Let other sites frame the page this view renders (none does today)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        g.allow_framing = True
        return view(*args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped  # type: ignore[return-value]


def content_security_policy(host: str, *, framing: bool = False) -> str:
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https: http:",
        "font-src 'self'",
        f"connect-src 'self' ws://{host} wss://{host}",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-src 'none'",
        "frame-ancestors *" if framing else "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def _secure(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        framing = bool(g.get("allow_framing"))
        response.headers["Content-Security-Policy"] = content_security_policy(
            request.host, framing=framing
        )
        if not framing:
            response.headers["X-Frame-Options"] = "DENY"
    return response


def register(app: Flask) -> None:
    app.after_request(_secure)
