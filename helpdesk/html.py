"""HTML in and out: sanitizing with nh3 and turning plain text into safe HTML."""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Mapping

import nh3

# What a support conversation needs: formatting, links, tables, images. Never script, style
# elements, forms, iframes or event handlers (nh3/ammonia removes those whatever we allow).
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "mark",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "*": {"dir", "lang"},
}
URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}

_REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
# Raster image types only: an SVG is a document that may carry script.
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp|bmp|avif)[;,]")


def sanitize_html(raw: str, cid_urls: Mapping[str, str] | None = None) -> str:
    """Sanitize untrusted HTML; ``cid:`` image references become our attachment URLs.

    Rewriting happens inside the sanitizer's attribute filter, so no regex ever touches
    unsanitized markup. Unknown ``cid:`` references are dropped.
    """
    cids = {k.strip("<>").lower(): v for k, v in (cid_urls or {}).items()}

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        lowered = value.strip().lower()
        if tag == "img" and attr == "src":
            if lowered.startswith("cid:"):
                return cids.get(value[4:].strip("<>").lower())
            if lowered.startswith("data:") and not _DATA_IMAGE.match(lowered):
                return None
        elif lowered.startswith(("data:", "cid:")):
            # data: and cid: only as an image's source; a link to data: can carry a page.
            return None
        return value

    return nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=attribute_filter,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def block_remote_images(clean_html: str) -> tuple[str, bool]:
    """Remove remote image sources (tracking pixels) from already-sanitized HTML.

    Returns the HTML and whether anything was blocked, so the UI can offer "load images".
    """
    blocked = False

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attr == "src" and _REMOTE.match(value):
            blocked = True
            return None
        return value

    out = nh3.clean(
        clean_html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=attribute_filter,
        link_rel="noopener noreferrer nofollow",
    )
    return out, blocked


_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def text_to_html(text: str, linkify: bool = True) -> str:
    """Plain text as safe HTML: escaped, paragraphs and line breaks kept, URLs clickable."""
    escaped = _html.escape(text)
    if linkify:
        escaped = _URL.sub(
            lambda m: f'<a href="{m.group(0)}" rel="noopener noreferrer nofollow">{m.group(0)}</a>',
            escaped,
        )
    paragraphs = [p for p in re.split(r"\n\s*\n", escaped.strip()) if p.strip()]
    return "".join(f"<p>{p.strip().replace(chr(10), '<br>')}</p>" for p in paragraphs)


AttributeFilter = Callable[[str, str, str], str | None]
