"""KB suggestions for a visitor's first question ("Does this answer it?").

The knowledge base is another module with its own JSON search endpoint
(``GET /api/v1/kb/search?q=&lang=``). The chat does not import it: it looks the endpoint up in
the app's URL map and calls its view in a sub-request, so the widget works unchanged whether the
KB is installed or not (no KB: no suggestions).
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from helpdesk.links import base_url

log = logging.getLogger("helpdesk.chat")

KB_SEARCH_PATH = "/api/v1/kb/search"
MAX_SUGGESTIONS = 3
MAX_SNIPPET_CHARS = 500
_TAG = re.compile(r"<[^>]*>")


def plain_snippet(snippet: str) -> str:
    """The KB's HTML snippet (escaped text, matches in ``<mark>``) as the plain text the widget
    shows: tags dropped, entities decoded, cut at a word within :data:`MAX_SNIPPET_CHARS`.

    Cutting the HTML itself could split an entity or a tag, and the widget sets the text, so
    an escaped apostrophe would have shown as ``&#x27;``.
    """
    text = " ".join(html.unescape(_TAG.sub("", snippet)).split())
    if len(text) <= MAX_SNIPPET_CHARS:
        return text
    return text[: MAX_SNIPPET_CHARS - 1].rsplit(" ", 1)[0].rstrip(" …") + "…"


def kb_available(app: Flask) -> bool:
    try:
        app.url_map.bind("localhost").match(KB_SEARCH_PATH, method="GET")
    except HTTPException:
        return False
    return True


def _hits(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("results", "hits", "articles", "items"):
            if isinstance(body.get(key), list):
                return list(body[key])
    return []


def suggest(app: Flask, query: str, lang: str) -> list[dict[str, str]]:
    """Up to three ``{title, url, snippet}`` for the question (``snippet`` is plain text);
    ``[]`` without a KB."""
    query = " ".join(query.split())
    if len(query) < 3 or not kb_available(app):
        return []
    try:
        args = {"q": query, "lang": lang, "limit": MAX_SUGGESTIONS, "source": "chat"}
        with app.test_request_context(KB_SEARCH_PATH, query_string=args):
            response = app.full_dispatch_request()
        if response.status_code != 200 or not response.is_json:
            return []
        hits = _hits(response.get_json())
    except Exception:
        # Suggestions are a nicety: a KB error must never stop a visitor from chatting.
        log.exception("KB suggestions failed")
        return []
    base = base_url(app)
    out: list[dict[str, str]] = []
    for hit in hits[:MAX_SUGGESTIONS]:
        if not isinstance(hit, dict) or not hit.get("title"):
            continue
        url = str(hit.get("url") or "")
        if url.startswith("/"):
            url = base + url
        if url and not url.startswith(("http://", "https://")):
            url = ""
        out.append(
            {
                "title": str(hit["title"])[:300],
                "url": url,
                "snippet": plain_snippet(str(hit.get("snippet") or hit.get("summary") or "")),
            }
        )
    return out
