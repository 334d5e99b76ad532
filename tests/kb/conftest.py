"""KB fixtures: the fixture articles (en + bn) created through the real services and indexed
by the real index writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from kb import services
from kb.indexer import index_pending
from kb.models import Article

FIXTURES = Path(__file__).parent / "fixtures" / "articles.json"


def load_fixture_articles() -> list[dict[str, Any]]:
    return json.loads(FIXTURES.read_text(encoding="utf-8"))


@pytest.fixture
def kb_articles(app: Flask, session: Session) -> dict[str, Article]:
    made: dict[str, Article] = {}
    for a in load_fixture_articles():
        made[a["slug"]] = services.create_article(
            session,
            title=a["title"],
            body=a["body"],
            language=a["language"],
            tags=a.get("tags", []),
            slug=a["slug"],
            status=a.get("status", "published"),
            visibility=a.get("visibility", "public"),
            category=a.get("category"),
        )
    session.commit()
    while index_pending(app):
        pass
    return made
