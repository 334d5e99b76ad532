"""What every writer of article rows uses (the article services, categories, the importer):
URL slugs, and telling the search index an article changed."""

from __future__ import annotations

import regex
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.services.effects import wake_worker_on_commit
from kb.analysis import normalize
from kb.models import Article

_SLUG_JUNK = regex.compile(r"[^\p{L}\p{M}\p{N}]+")


def slugify(text: str) -> str:
    """A URL slug that keeps Bengali letters whole (vowel signs and virama are marks)."""
    slug = _SLUG_JUNK.sub("-", normalize(text).lower()).strip("-")
    return slug[:200] or "article"


def mark_dirty(session: Session, article: Article) -> None:
    """The index must see ``article`` again: the worker re-indexes it after commit."""
    article.updated_at = utcnow()
    wake_worker_on_commit(session)
