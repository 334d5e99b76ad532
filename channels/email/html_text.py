"""Readable plain text of an HTML mail body, as a browser would lay it out.

Block elements and ``<br>`` become line breaks (paragraph-like blocks a blank line), list items
get a dash, ``<pre>`` keeps its whitespace, scripts, styles and the head are dropped. Used for
mails that come without a text/plain part.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

__all__ = ["html_to_text"]

# Elements that start a new line, and the ones that stand apart by a blank line, as a browser
# renders them.
_LINE_TAGS = frozenset(
    {
        "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset", "figure",
        "footer", "form", "header", "hr", "li", "main", "nav", "section", "tr",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset(
    {"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul"}
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "template", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.preformatted = 0

    def _break(self, lines: int) -> None:
        # Adjacent blocks share their breaks: </div><div> is one line break, not two.
        tail = "".join(self.out[-2:])
        present = len(tail) - len(tail.rstrip("\n"))
        if self.out and present < lines:
            self.out.append("\n" * (lines - present))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in _LINE_TAGS or tag in _PARAGRAPH_TAGS:
            self._break(2 if tag in _PARAGRAPH_TAGS else 1)
            if tag == "li":
                self.out.append("- ")
            elif tag == "pre":
                self.preformatted += 1
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _LINE_TAGS or tag in _PARAGRAPH_TAGS:
            self._break(2 if tag in _PARAGRAPH_TAGS else 1)
            if tag == "pre":
                self.preformatted = max(0, self.preformatted - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if not self.preformatted:
            data = re.sub(r"\s+", " ", data)
            if not data.strip() and (not self.out or self.out[-1].endswith("\n")):
                return  # whitespace between blocks is not text
        self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: block elements and <br> become line breaks."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
        text = "".join(extractor.out)
    except Exception:  # _markupbase raises AssertionError on some broken "<![" sections
        text = unescape(re.sub(r"<[^>]*>", " ", html))
    lines = [line.strip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
