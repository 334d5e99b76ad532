"""Publishing is a permission (issue 13, item 4): admins and KB editors publish, unpublish,
archive and change published articles; other agents write drafts. Enforced by the service
(whoever calls it) and shown in the editor (no publish button, a 403 with a clear message)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services.agents import create_agent
from helpdesk.services.errors import Forbidden
from kb import services
from kb.models import Article, ArticleStatus
from tests.conftest import PASSWORD, AgentClient, bn, login


@pytest.fixture
def draft(session: Session, agent: Agent) -> Article:
    article = services.create_article(
        session, title="Refund times", body="Three days.", author=agent
    )
    session.commit()
    return article


@pytest.fixture
def editor(session: Session) -> Agent:
    editor = create_agent(session, "editor@example.com", "Eda Editor", PASSWORD)
    editor.kb_editor = True
    session.commit()
    return editor


def test_an_agent_drafts_but_the_service_refuses_publishing(
    session: Session, agent: Agent, draft: Article
) -> None:
    with pytest.raises(Forbidden):
        services.publish_article(session, draft, agent)
    with pytest.raises(Forbidden):
        services.create_article(session, title="Live", body="x", status="published", author=agent)
    services.update_article(session, draft, body="Five days.", author=agent)  # a draft: fine
    session.commit()
    assert draft.status == ArticleStatus.DRAFT


def test_editors_and_admins_publish_and_only_they_change_published_articles(
    session: Session, agent: Agent, editor: Agent, admin: Agent, draft: Article
) -> None:
    services.publish_article(session, draft, editor)
    session.commit()
    with pytest.raises(Forbidden):
        services.update_article(session, draft, body="Changed live.", author=agent)
    session.rollback()
    with pytest.raises(Forbidden):
        services.unpublish_article(session, draft, agent)
    with pytest.raises(Forbidden):
        services.archive_article(session, draft, agent)
    services.update_article(session, draft, body="Five days.", author=admin)
    services.archive_article(session, draft, admin)
    session.commit()
    assert draft.status == ArticleStatus.ARCHIVED


def test_the_editor_hides_publish_from_agents_and_answers_403(
    agent_client: AgentClient, draft: Article, session: Session
) -> None:
    page = agent_client.get(f"/agent/kb/{draft.id}").get_data(as_text=True)
    assert "data-kb-publish" not in page
    assert "data-kb-no-publish" in page
    response = agent_client.post(f"/agent/kb/{draft.id}/status", {"status": "published"})
    assert response.status_code == 403
    assert "knowledge-base editors" in response.get_data(as_text=True)
    session.refresh(draft)
    assert draft.status == ArticleStatus.DRAFT


def test_the_403_is_translated(
    app: Flask, agent: Agent, draft: Article, agent_client: AgentClient
) -> None:
    agent_client.post("/language", {"lang": "bn", "next": "/agent/queue"})
    response = agent_client.post(f"/agent/kb/{draft.id}/status", {"status": "archived"})
    assert response.status_code == 403
    assert bn(
        "Only admins and knowledge-base editors can publish, unpublish, archive or change"
        " published articles. Save a draft and ask an editor to publish it."
    ) in response.get_data(as_text=True)


def test_an_editor_sees_and_uses_the_publish_button(
    app: Flask, editor: Agent, draft: Article, session: Session
) -> None:
    client = app.test_client()
    login(client, editor.email)
    editor_client = AgentClient(client)
    page = editor_client.get(f"/agent/kb/{draft.id}").get_data(as_text=True)
    assert "data-kb-publish" in page
    response = editor_client.post(f"/agent/kb/{draft.id}/status", {"status": "published"})
    assert response.status_code == 302
    session.refresh(draft)
    assert draft.status == ArticleStatus.PUBLISHED


def test_the_navigation_links_the_knowledge_base_and_its_report(
    agent_client: AgentClient,
) -> None:
    page = agent_client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/agent/kb/"' in page
    assert 'href="/agent/kb/report"' in page
    agent_client.post("/language", {"lang": "bn", "next": "/agent/queue"})
    page = agent_client.get("/agent/queue").get_data(as_text=True)
    assert f">{bn('Knowledge base')}</a>" in page
    assert f">{bn('KB report')}</a>" in page


def test_only_editors_change_the_categories_customers_see(
    session: Session, agent: Agent, editor: Agent, agent_client: AgentClient
) -> None:
    from kb import categories

    billing = categories.create_category(session, "Billing", actor=editor)
    session.commit()
    with pytest.raises(Forbidden):
        categories.create_category(session, "Mine", actor=agent)
    with pytest.raises(Forbidden):
        categories.delete_category(session, billing, actor=agent)
    session.rollback()
    page = agent_client.get("/agent/kb/categories").get_data(as_text=True)
    assert "data-kb-no-publish" in page and "Create category" not in page
    response = agent_client.post(f"/agent/kb/categories/{billing.id}", {"name": "Payments"})
    assert response.status_code == 403
    assert agent_client.post("/agent/kb/categories", {"name": "New"}).status_code == 403
    assert agent_client.post(f"/agent/kb/categories/{billing.id}/delete").status_code == 403
    session.refresh(billing)
    assert billing.name == "Billing"
