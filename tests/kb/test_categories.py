"""Category management: create, rename and translate, reorder, delete with move-to; the editor
and the portal's category pages use the result; each change is an event of the stream."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import stream
from helpdesk.services.errors import ServiceError
from kb import categories, services
from kb.indexer import get_index, index_pending
from kb.models import Article, Category
from tests.conftest import AgentClient


def _names(session: Session) -> list[str]:
    return [c.name for c in categories.ordered(session)]


def test_create_rename_translate_and_reorder(session: Session) -> None:
    billing = categories.create_category(session, "Billing", {"bn": "বিলিং"})
    account = categories.create_category(session, "Account")
    delivery = categories.create_category(session, " Delivery  ")
    assert _names(session) == ["Billing", "Account", "Delivery"]
    assert (billing.slug, billing.label("bn"), billing.label("en")) == (
        "billing",
        "বিলিং",
        "Billing",
    )
    assert account.label("bn") == "Account"  # no translation: the default name
    categories.move_category(session, delivery, -1)
    categories.move_category(session, billing, +5)  # clamped to the end
    assert _names(session) == ["Delivery", "Account", "Billing"]
    assert categories.rename_category(session, billing, "Payments", {"bn": "পেমেন্ট"})
    assert billing.slug == "billing"  # links keep working
    assert not categories.rename_category(session, billing, "Payments", {"bn": "পেমেন্ট"})
    # The editor and import files may name it by its new or its translated name.
    assert categories.find_category(session, "payments") is billing
    assert categories.find_category(session, "পেমেন্ট") is billing
    assert services.get_or_create_category(session, "Payments") is billing


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("", None),
        ("x" * 201, None),
        ("Account", None),
        ("New", {"bn": "অ্যাকাউন্ট"}),
        ("N", {"fr": "x"}),
    ],
)
def test_invalid_names_are_refused(
    session: Session, name: str, names: dict[str, str] | None
) -> None:
    categories.create_category(session, "Account", {"bn": "অ্যাকাউন্ট"})
    with pytest.raises(ServiceError):
        categories.create_category(session, name, names)


def test_delete_only_when_empty_or_moving_articles(app: Flask, session: Session) -> None:
    old = categories.create_category(session, "Old")
    new = categories.create_category(session, "New")
    article = services.create_article(
        session, title="Track a parcel", body="Use the link.", category=old, status="published"
    )
    draft = services.create_article(session, title="Draft", body="", category=old)
    session.commit()
    index_pending(app)
    with pytest.raises(ServiceError):
        categories.delete_category(session, old)  # has articles (a draft counts)
    with pytest.raises(ServiceError):
        categories.delete_category(session, old, move_to=old)
    assert categories.delete_category(session, old, move_to=new) == 2
    session.commit()
    # The index learns the move: the articles are dirty and re-indexed by the worker.
    assert index_pending(app) == 2
    assert get_index(app).search("parcel")[0].slug == "track-a-parcel"
    assert article.category is new and draft.category is new
    assert session.get(Category, old.id) is None
    categories.delete_category(session, categories.create_category(session, "Empty"))
    session.commit()
    assert _names(session) == ["New"]
    session.commit()


def test_category_page_creates_renames_moves_and_deletes(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    agent.kb_editor = True  # categories are what customers see: an editor's work
    session.commit()
    page = agent_client.get("/agent/kb/categories")
    assert page.status_code == 200
    created = agent_client.post(
        "/agent/kb/categories", {"name": "Returns", "name_bn": "ফেরত"}, follow_redirects=True
    )
    assert "Returns" in created.get_data(as_text=True)
    agent_client.post("/agent/kb/categories", {"name": "Orders"})
    returns = categories.find_category(session, "Returns")
    orders = categories.find_category(session, "Orders")
    assert returns is not None and orders is not None and returns.names == {"bn": "ফেরত"}

    # A duplicate name is refused with a message and the typed text kept.
    dup = agent_client.post("/agent/kb/categories", {"name": "ফেরত", "name_bn": "আমার লেখা"})
    html = dup.get_data(as_text=True)
    assert dup.status_code == 400 and "already exists" in html and "আমার লেখা" in html

    r = agent_client.post(
        f"/agent/kb/categories/{returns.id}",
        {"name": "Returns & refunds", "name_bn": "ফেরত ও রিফান্ড"},
    )
    assert r.status_code == 302
    empty = agent_client.post(f"/agent/kb/categories/{returns.id}", {"name": "", "name_bn": "x"})
    assert empty.status_code == 400 and 'value="x"' in empty.get_data(as_text=True)
    agent_client.post(f"/agent/kb/categories/{orders.id}/move", {"direction": "up"})
    session.expire_all()
    assert _names(session) == ["Orders", "Returns & refunds"]
    assert returns.label("bn") == "ফেরত ও রিফান্ড" and returns.slug == "returns"

    services.create_article(session, title="Refunds", body="", category=returns)
    session.commit()
    refused = agent_client.post(f"/agent/kb/categories/{returns.id}/delete")
    assert refused.status_code == 400 and "choose a category" in refused.get_data(as_text=True)
    moved = agent_client.post(
        f"/agent/kb/categories/{returns.id}/delete", {"move_to": str(orders.id)}
    )
    assert moved.status_code == 302
    session.expire_all()
    assert _names(session) == ["Orders"]
    assert agent_client.post("/agent/kb/categories/99999/delete").status_code == 404


def test_category_forms_need_csrf_and_an_agent(
    app: Flask, session: Session, agent_client: AgentClient, client: FlaskClient
) -> None:
    assert agent_client.client.post("/agent/kb/categories", data={"name": "X"}).status_code == 400
    assert categories.find_category(session, "X") is None
    assert client.get("/agent/kb/categories").status_code in (302, 404)


def test_editor_picks_a_category_and_portal_shows_translated_names(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient, client: FlaskClient
) -> None:
    cat = categories.create_category(session, "Payments", {"bn": "পেমেন্ট"})
    session.commit()
    form = agent_client.get("/agent/kb/new").get_data(as_text=True)
    assert f'<option value="{cat.id}">Payments</option>' in form
    r = agent_client.post(
        "/agent/kb/new",
        {
            "title": "Pay by card",
            "body": "Cards work.",
            "language": "en",
            "category": str(cat.id),
            "visibility": "public",
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    article = session.query(Article).filter_by(slug="pay-by-card").one()
    assert article.category_id == cat.id
    edit = agent_client.get(f"/agent/kb/{article.id}").get_data(as_text=True)
    assert f'<option selected value="{cat.id}">Payments</option>' in edit
    bad = agent_client.post(
        "/agent/kb/new",
        {
            "title": "Other",
            "body": "",
            "language": "en",
            "category": "424242",
            "visibility": "public",
        },
    )
    assert bad.status_code == 400 and "Other" in bad.get_data(as_text=True)
    services.publish_article(session, article)  # an editor's step (the system here)
    session.commit()
    en = client.get("/portal/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Payments" in en
    bn = client.get("/portal/c/payments", headers={"Accept-Language": "bn"})
    assert bn.status_code == 200 and "পেমেন্ট" in bn.get_data(as_text=True)


def _seen(recorder: stream.StreamRecorder) -> list[tuple[str, str, int, dict[str, object]]]:
    return [(e.name, e.subject_type, e.subject_id, e.data) for e in recorder.events]


def test_the_category_page_records_each_change_as_an_event(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    agent.kb_editor = True
    session.commit()
    with stream.capture() as seen:
        agent_client.post("/agent/kb/categories", {"name": "Returns", "name_bn": "ফেরত"})
        agent_client.post("/agent/kb/categories", {"name": "Orders"})
        returns = categories.find_category(session, "Returns")
        orders = categories.find_category(session, "Orders")
        assert returns is not None and orders is not None
        assert _seen(seen) == [
            ("category.created", "category", returns.id,
             {"name": "Returns", "names": {"bn": "ফেরত"}, "slug": "returns", "position": 0}),
            ("category.created", "category", orders.id,
             {"name": "Orders", "names": {}, "slug": "orders", "position": 1}),
        ]  # fmt: skip
        assert {(e.actor_type, e.actor_id) for e in seen.events} == {("agent", agent.id)}
        seen.clear()

        # A refused change (a name in use) is rolled back with its event, if any.
        refused = agent_client.post(f"/agent/kb/categories/{orders.id}", {"name": "ফেরত"})
        assert refused.status_code == 400 and seen.events == []

        agent_client.post(
            f"/agent/kb/categories/{returns.id}",
            {"name": "Returns & refunds", "name_bn": "ফেরত ও রিফান্ড"},
        )
        assert _seen(seen) == [
            ("category.updated", "category", returns.id, {"changes": {
                "name": {"from": "Returns", "to": "Returns & refunds"},
                "names": {"from": {"bn": "ফেরত"}, "to": {"bn": "ফেরত ও রিফান্ড"}},
            }}),
        ]  # fmt: skip
        seen.clear()
        # Saving the same names again changes nothing: no event.
        agent_client.post(
            f"/agent/kb/categories/{returns.id}",
            {"name": "Returns & refunds", "name_bn": "ফেরত ও রিফান্ড"},
        )
        assert seen.events == []

        # A move renumbers: every category whose place changed says so.
        agent_client.post(f"/agent/kb/categories/{orders.id}/move", {"direction": "up"})
        assert _seen(seen) == [
            ("category.updated", "category", orders.id,
             {"changes": {"position": {"from": 1, "to": 0}}}),
            ("category.updated", "category", returns.id,
             {"changes": {"position": {"from": 0, "to": 1}}}),
        ]  # fmt: skip
        seen.clear()

        article = services.create_article(session, title="Refunds", body="", category=returns)
        session.commit()
        seen.clear()
        agent_client.post(f"/agent/kb/categories/{returns.id}/delete", {"move_to": str(orders.id)})
        assert _seen(seen) == [
            ("article.updated", "article", article.id, {"fields": ["category_id"]}),
            ("category.deleted", "category", returns.id, {
                "name": "Returns & refunds", "names": {"bn": "ফেরত ও রিফান্ড"},
                "slug": "returns", "moved_to_id": orders.id, "articles": 1,
            }),
        ]  # fmt: skip
    # The durable stream holds what the live subscribers heard.
    stored = stream.read(session, 0, names=["category.deleted"])
    assert [(e.subject_id, e.actor_id) for e in stored] == [(returns.id, agent.id)]


def test_no_category_event_outlives_a_rollback(session: Session) -> None:
    start = stream.last_id(session)
    with stream.capture() as seen:
        billing = categories.create_category(session, "Billing")
        other = categories.create_category(session, "Other")
        categories.rename_category(session, billing, "Payments", {"bn": "পেমেন্ট"})
        categories.move_category(session, other, -1)
        categories.delete_category(session, other)
        session.rollback()
        assert seen.events == []
    assert stream.read(session, start) == []
    assert categories.ordered(session) == []

    # A savepoint that rolls back drops its events; the enclosing transaction keeps its own.
    kept = categories.create_category(session, "Kept")
    with pytest.raises(RuntimeError), session.begin_nested():
        categories.rename_category(session, kept, "Dropped")
        raise RuntimeError("the caller gave up")
    session.commit()
    assert [(e.name, e.data["name"]) for e in stream.read(session, start)] == [
        ("category.created", "Kept")
    ]
