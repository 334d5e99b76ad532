"""KB services, the index writer, import/export and the CLI, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services.errors import ServiceError
from kb import services
from kb.indexer import get_index, index_pending, pending_count, reindex_all
from kb.models import Article, ArticleRevision


def test_markdown_is_rendered_and_sanitized(session: Session) -> None:
    a = services.create_article(
        session,
        title="Reset",
        body="# Steps\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) **bold**",
    )
    assert "<h1>Steps</h1>" in a.body_html and "<strong>bold</strong>" in a.body_html
    assert "<script>" not in a.body_html and 'href="javascript' not in a.body_html


def test_revisions_publish_and_index_after_commit(
    app: Flask, session: Session, agent: Agent
) -> None:
    agent.kb_editor = True  # publishing is a knowledge-base editor's permission
    a = services.create_article(session, title="Refund times", body="Three days.", author=agent)
    session.commit()
    assert pending_count(session) == 1
    session.commit()  # the worker runs in its own transaction, never inside a request's
    index_pending(app)
    # Drafts are indexed for agents, never for customers.
    assert get_index(app).search("refund", include_drafts=True)
    assert not get_index(app).search("refund")
    services.publish_article(session, a, agent)
    assert not services.update_article(session, a, title="Refund times")  # nothing changed
    services.update_article(session, a, body="Five working days.", author=agent)
    session.commit()
    index_pending(app)
    hits = get_index(app).search("working days")
    assert [h.slug for h in hits] == [a.slug]
    revs = session.scalars(select(ArticleRevision).where(ArticleRevision.article_id == a.id)).all()
    assert [r.number for r in revs] == [1, 2] and revs[0].body_md == "Three days."
    services.restore_revision(session, a, 1, agent)
    services.archive_article(session, a, agent)
    session.commit()
    index_pending(app)
    assert a.revision_count == 3 and a.body_md == "Three days."
    assert not get_index(app).search("refund", include_drafts=True, include_internal=True)
    assert pending_count(session) == 0
    session.commit()


def test_rolled_back_changes_never_reach_the_index(app: Flask, session: Session) -> None:
    services.create_article(session, title="Ghost article", body="boo", status="published")
    session.rollback()
    assert index_pending(app) == 0
    assert not get_index(app).search("ghost")


def test_slug_must_be_unique_and_bengali_slugs_stay_whole(session: Session) -> None:
    a = services.create_article(session, title="পাসওয়ার্ড রিসেট", body="...", language="bn")
    assert a.slug == "পাসওয়ার্ড-রিসেট"
    with pytest.raises(ServiceError):
        services.create_article(session, title="x", body="", slug="পাসওয়ার্ড রিসেট")
    with pytest.raises(ServiceError):
        services.create_article(session, title="x", body="", language="fr")


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_import_updates_instead_of_duplicating_and_export_round_trips(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    from kb.importer import export_folder, import_folder

    src = tmp_path / "src"
    src.mkdir()
    _write(
        src,
        "reset-password.md",
        "---\ntitle: Reset your password\ncategory: Account\ntags: [password, login]\n---\n"
        "Click **Forgot password**.\n",
    )
    _write(
        src,
        "reset-bn.md",
        "---\ntitle: পাসওয়ার্ড রিসেট\nlanguage: bn\ntranslation_of: reset-password\n"
        "tags: পাসওয়ার্ড, লগইন\n---\nলগইন পাতায় যান।\n",
    )
    _write(src, "broken.md", "---\ntitle: [unclosed\n---\nbody\n")
    first = import_folder(session, src)
    session.commit()
    assert sorted(first.created) == ["reset-bn", "reset-password"]
    assert [name for name, _ in first.errors] == ["broken.md"]
    again = import_folder(session, src)
    session.commit()
    assert again.created == [] and sorted(again.unchanged) == ["reset-bn", "reset-password"]
    en = session.scalars(select(Article).where(Article.slug == "reset-password")).one()
    bn = session.scalars(select(Article).where(Article.slug == "reset-bn")).one()
    assert bn.translation_group == en.id and bn.tags == ["পাসওয়ার্ড", "লগইন"]
    assert en.category is not None and en.category.name == "Account"

    out = tmp_path / "out"
    assert export_folder(session, out) == 2
    exported = (out / "reset-bn.md").read_text(encoding="utf-8")
    assert "translation_of: reset-password" in exported and "পাসওয়ার্ড রিসেট" in exported
    (src / "broken.md").unlink()
    round_trip = import_folder(session, out)
    assert round_trip.created == [] and round_trip.errors == []


def test_cli_import_search_json_and_reindex(app: Flask, session: Session, tmp_path: Path) -> None:
    src = tmp_path / "kb"
    src.mkdir()
    _write(
        src,
        "delivery.md",
        "---\ntitle: Delivery times\ntags: [delivery]\n---\nOrders arrive in 2 days.\n",
    )
    _write(
        src,
        "secret.md",
        "---\ntitle: Delivery escalation\nvisibility: internal\n---\nCall the courier.\n",
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kb", "import", str(src)])
    assert result.exit_code == 0, result.output
    assert "created 2" in result.output
    result = runner.invoke(args=["kb", "search", "orders arrive", "--json", "--mode", "bm25"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [set(d) for d in data] == [{"slug", "title", "language", "score", "snippet"}]
    assert data[0]["slug"] == "delivery" and "<mark>" in data[0]["snippet"]
    result = runner.invoke(args=["kb", "reindex"])
    assert result.exit_code == 0 and "indexed 2 articles" in result.output
    result = runner.invoke(args=["kb", "search", "escalation", "--internal", "--json"])
    assert json.loads(result.output)[0]["slug"] == "secret"
    result = runner.invoke(args=["kb", "import", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "Not a folder" in result.output


def test_reindex_rebuilds_from_the_database(app: Flask, kb_articles: dict[str, Article]) -> None:
    index = get_index(app)
    index.delete([a.id for a in kb_articles.values()])  # a lost index
    assert not index.search("refund")
    reindex_all(app)
    assert index.search("refund")[0].slug in ("refund-policy", "refund-time-bn")


def test_the_worker_rebuilds_an_index_written_by_older_analyzers(
    app: Flask, kb_articles: dict[str, Article]
) -> None:
    index = get_index(app)
    gen = index.path / (index.path / "CURRENT").read_text().strip()
    # An index from before an upgrade that changed the analyzers: it records no analyzer
    # version, and its terms are not what queries are analysed to now (here: an article is
    # missing from it, which only a rebuild brings back).
    index.delete([kb_articles["refund-policy"].id])
    (gen / "ANALYZER").unlink()
    assert "refund-policy" not in [h.slug for h in index.search("refund")]
    assert index_pending(app) > 0  # no article is dirty, yet the worker rewrites them all
    assert not index.needs_rebuild
    assert "refund-policy" in [h.slug for h in index.search("refund")]
    assert index_pending(app) == 0


# --- ranking on the fixture KB, created through the services --------------------------------


@pytest.mark.parametrize(
    ("query", "lang", "expected"),
    [
        ("reset my password", "en", "reset-password"),
        ("পাসওয়ার্ডটি", "bn", "password-reset-bn"),
        ("পাসওয়ার্ডের রিসেট", "bn", "password-reset-bn"),
        ("রিফান্ড কত দিন", "bn", "refund-time-bn"),
        ("how long does a refund take", "en", "refund-policy"),
        ("delivery outside Dhaka", "en", "delivery-times"),
    ],
)
def test_ranking_through_the_services(
    app: Flask, kb_articles: dict[str, Article], query: str, lang: str, expected: str
) -> None:
    from kb import queries

    with app.test_request_context():
        hits = queries.search(query, lang=lang).hits
    assert hits and hits[0].slug == expected


def test_misspelled_query_gets_did_you_mean(app: Flask, kb_articles: dict[str, Article]) -> None:
    from kb import queries

    with app.test_request_context():
        result = queries.search("pasword reset", lang="en")
    assert result.did_you_mean == "password reset"


def test_article_changes_reach_the_event_stream_with_what_changed(
    session: Session, agent: Agent
) -> None:
    from helpdesk.services import stream

    agent.kb_editor = True  # publishing is a knowledge-base editor's permission
    with stream.capture() as committed:
        a = services.create_article(session, title="Refund times", body="Three days.", author=agent)
        session.commit()
        # A category given by name and a slug are looked up on the way (queries that flush).
        services.update_article(
            session, a, title="রিফান্ডের সময়", category="Billing", slug="refund-days", author=agent
        )
        session.commit()
        services.publish_article(session, a, agent)
        session.commit()
    # Naming a category that does not exist creates it, with its own event.
    [category] = [e for e in committed.events if e.name == "category.created"]
    assert category.data["name"] == "Billing"
    created, updated, published = [e for e in committed.events if e.subject_type == "article"]
    assert (created.name, created.subject_id, created.actor_id) == (
        "article.created",
        a.id,
        agent.id,
    )
    assert created.data["status"] == "draft" and created.data["title"] == "Refund times"
    assert updated.name == "article.updated"
    assert updated.data == {"fields": ["category_id", "slug", "title"]}
    assert published.data == {
        "fields": ["status"],
        "changes": {"status": {"from": "draft", "to": "published"}},
    }
