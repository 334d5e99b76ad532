"""What changed between two revisions of an article: a line diff of the Markdown source with the
changed words marked inside changed lines, and the title change.

Pure (no database, no Flask). Every piece of text is HTML-escaped here, and the only markup
added is ``<del>`` / ``<ins>``, so templates may render the result with ``|safe``.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass, field
from typing import Literal

import regex

from kb.analysis import normalize

__all__ = ["DiffLine", "Hunk", "RevisionDiff", "diff_revisions"]

LineKind = Literal["same", "del", "ins"]

#: Unchanged lines shown around each change (like ``diff -u``).
CONTEXT_LINES = 3
#: Word-level marking is skipped for very long lines (minified tables, pasted logs): the
#: matcher is quadratic, and a whole-line change is just as readable there.
MAX_INLINE_CHARS = 2000

# Words (letters with their combining marks, so a Bengali word is one token), runs of spaces,
# and single other characters: a change of one Bengali vowel sign marks the word, not a glyph.
_TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}\p{Pc}\u200c\u200d]+|\s+|.", regex.DOTALL)


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: LineKind
    old_no: int | None
    new_no: int | None
    html: str  # escaped text; changed words in <del>/<ins>


@dataclass(frozen=True, slots=True)
class Hunk:
    lines: list[DiffLine]


@dataclass(frozen=True, slots=True)
class RevisionDiff:
    title_changed: bool
    old_title_html: str
    new_title_html: str
    hunks: list[Hunk] = field(default_factory=list)
    added: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return self.title_changed or bool(self.hunks)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _mark(text: str, tag: str) -> str:
    return f"<{tag}>{html.escape(text)}</{tag}>" if text else ""


def inline_diff(old: str, new: str) -> tuple[str, str]:
    """``old`` and ``new`` escaped, with the words that differ wrapped in <del> / <ins>."""
    if len(old) + len(new) > MAX_INLINE_CHARS:
        return html.escape(old), html.escape(new)
    a, b = _tokens(old), _tokens(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old_part, new_part = "".join(a[i1:i2]), "".join(b[j1:j2])
        if op == "equal":
            left.append(html.escape(old_part))
            right.append(html.escape(new_part))
        else:
            left.append(_mark(old_part, "del"))
            right.append(_mark(new_part, "ins"))
    return "".join(left), "".join(right)


def _lines(text: str) -> list[str]:
    # NFC and one line-ending style, so a file saved on Windows or typed with decomposed
    # Bengali does not show every line as changed.
    return normalize(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _replace_block(old: list[str], new: list[str], i1: int, j1: int) -> list[DiffLine]:
    # Changed lines are paired one to one so each pair shows its changed words; what is left
    # over on either side is a plain deletion or insertion.
    dels: list[DiffLine] = []
    ins: list[DiffLine] = []
    for k in range(max(len(old), len(new))):
        if k < len(old) and k < len(new):
            left, right = inline_diff(old[k], new[k])
            dels.append(DiffLine("del", i1 + k + 1, None, left))
            ins.append(DiffLine("ins", None, j1 + k + 1, right))
        elif k < len(old):
            dels.append(DiffLine("del", i1 + k + 1, None, html.escape(old[k])))
        else:
            ins.append(DiffLine("ins", None, j1 + k + 1, html.escape(new[k])))
    return dels + ins


def diff_revisions(old_title: str, old_body: str, new_title: str, new_body: str) -> RevisionDiff:
    """The change from (``old_title``, ``old_body``) to (``new_title``, ``new_body``)."""
    old_title, new_title = normalize(old_title), normalize(new_title)
    if old_title != new_title:
        old_title_html, new_title_html = inline_diff(old_title, new_title)
    else:
        old_title_html = new_title_html = html.escape(new_title)
    a, b = _lines(old_body), _lines(new_body)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    hunks: list[Hunk] = []
    added = removed = 0
    for group in matcher.get_grouped_opcodes(CONTEXT_LINES):
        lines: list[DiffLine] = []
        for op, i1, i2, j1, j2 in group:
            if op == "equal":
                lines.extend(
                    DiffLine("same", i1 + k + 1, j1 + k + 1, html.escape(a[i1 + k]))
                    for k in range(i2 - i1)
                )
                continue
            removed += i2 - i1
            added += j2 - j1
            lines.extend(_replace_block(a[i1:i2], b[j1:j2], i1, j1))
        hunks.append(Hunk(lines))
    return RevisionDiff(
        title_changed=old_title != new_title,
        old_title_html=old_title_html,
        new_title_html=new_title_html,
        hunks=hunks,
        added=added,
        removed=removed,
    )
