"""Revision history: what changed between two revisions, and restoring one."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from kb import services
from kb.diff import diff_revisions, inline_diff
from kb.models import Article, ArticleRevision
from tests.conftest import AgentClient


def test_changed_words_are_marked_inside_a_changed_line() -> None:
    d = diff_revisions(
        "Reset your password",
        "Open Settings.\nPress Reset.\nWait five minutes.",
        "Reset your password",
        "Open Settings.\nPress Forgot password.\nWait five minutes.",
    )
    assert not d.title_changed and d.added == 1 and d.removed == 1
    [hunk] = d.hunks
    kinds = [(line.kind, line.old_no, line.new_no) for line in hunk.lines]
    assert kinds == [("same", 1, 1), ("del", 2, None), ("ins", None, 2), ("same", 3, 3)]
    assert hunk.lines[1].html == "Press <del>Reset</del>."
    assert hunk.lines[2].html == "Press <ins>Forgot password</ins>."


def test_title_change_and_bengali_words_are_marked_whole() -> None:
    d = diff_revisions("পাসওয়ার্ড রিসেট", "", "পাসওয়ার্ড পরিবর্তন", "")
    assert d.title_changed and not d.hunks
    assert d.old_title_html == "পাসওয়ার্ড <del>রিসেট</del>"
    assert d.new_title_html == "পাসওয়ার্ড <ins>পরিবর্তন</ins>"


def test_everything_is_escaped() -> None:
    old, new = inline_diff("<b>bold</b>", '<script>alert("x")</script>')
    assert "<script" not in new and "<b>" not in old
    d = diff_revisions("a", "<img src=x onerror=alert(1)>", "a", "safe")
    rendered = "".join(line.html for h in d.hunks for line in h.lines)
    assert "<img" not in rendered and "&lt;img" in rendered


def test_long_unchanged_stretches_are_collapsed_into_hunks() -> None:
    old = "\n".join(f"line {i}" for i in range(40))
    new = old.replace("line 2\n", "line two\n").replace("line 35", "line thirty-five")
    d = diff_revisions("t", old, "t", new)
    assert len(d.hunks) == 2
    assert all(len(h.lines) <= 2 * 3 + 2 for h in d.hunks)


def test_identical_and_nfc_equivalent_texts_have_no_diff() -> None:
    decomposed = "পাসওয়ার্ড"  # য় as য + nukta
    assert not diff_revisions("t", "পাসওয়ার্ড\r\n", "t", decomposed + "\n").changed


def _edit_twice(session: Session, agent: Agent) -> Article:
    article = services.create_article(
        session,
        title="Refund times",
        body="Refunds take three days.\n\nAsk support <b>first</b>.",
        author=agent,
    )
    services.update_article(
        session,
        article,
        author=agent,
        title="Refund time",
        body="Refunds take five working days.\n\nAsk support <b>first</b>.",
    )
    session.commit()
    return article


def test_compare_page_shows_title_and_text_changes_escaped(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    article = _edit_twice(session, agent)
    page = agent_client.get(f"/agent/kb/{article.id}/revisions/compare")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Refund <del>times</del>" in html and "Refund <ins>time</ins>" in html
    assert "<del>three</del>" in html and "<ins>five working</ins>" in html
    assert "&lt;b&gt;first&lt;/b&gt;" in html  # the Markdown source, never rendered
    history = agent_client.get(f"/agent/kb/{article.id}/revisions").get_data(as_text=True)
    assert f"/agent/kb/{article.id}/revisions/compare?from=1&amp;to=2" in history


def test_compare_unknown_revision_or_article_is_404(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    article = _edit_twice(session, agent)
    assert agent_client.get(f"/agent/kb/{article.id}/revisions/compare?from=9").status_code == 404
    assert agent_client.get(f"/agent/kb/{article.id}/revisions/compare?to=x").status_code == 404
    assert agent_client.get("/agent/kb/999999/revisions/compare").status_code == 404


def test_customers_cannot_see_revisions(
    app: Flask, session: Session, agent: Agent, client: FlaskClient
) -> None:
    article = _edit_twice(session, agent)
    response = client.get(f"/agent/kb/{article.id}/revisions/compare")
    # A visitor is sent to the agents' sign-in page; the revisions are not shown.
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_restore_creates_a_new_revision_and_needs_csrf(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    article = _edit_twice(session, agent)
    url = f"/agent/kb/{article.id}/revisions/1/restore"
    no_token = agent_client.client.post(url)
    assert no_token.status_code == 400  # CSRF refused
    response = agent_client.post(url)
    assert response.status_code == 302
    session.expire_all()
    restored = session.get(Article, article.id)
    assert restored is not None
    assert (restored.title, restored.revision_count) == ("Refund times", 3)
    assert restored.body_md.startswith("Refunds take three days.")
    numbers = session.scalars(
        select(ArticleRevision.number).where(ArticleRevision.article_id == article.id)
    ).all()
    assert sorted(numbers) == [1, 2, 3]  # history is kept, not rewritten
    # Restoring what the article already says adds nothing.
    agent_client.post(url)
    session.expire_all()
    assert session.get(Article, article.id).revision_count == 3  # type: ignore[union-attr]
    page = agent_client.get(f"/agent/kb/{article.id}/revisions/compare?from=2&to=3")
    assert "<del>five working</del>" in page.get_data(as_text=True)
    assert agent_client.post(f"/agent/kb/{article.id}/revisions/42/restore").status_code == 404
