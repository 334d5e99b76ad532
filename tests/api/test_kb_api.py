"""The knowledge base in the REST API: articles and categories as a documentation tool syncing
the help center uses them, through the editor's verbs (the same permissions, revisions and
events), on both databases."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import stream
from helpdesk.services.agents import create_agent
from kb.indexer import index_pending
from kb.models import Article, ArticleRevision, Category
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import PASSWORD, bn

BN_TITLE = "পাসওয়ার্ড ভুলে গেলে কী করবেন"
BN_BODY = "**লগইন** পাতায় *পাসওয়ার্ড ভুলে গেছি* চাপুন।\n\n১. ইমেইল দেখুন\n২. নতুন পাসওয়ার্ড দিন"


def _names(session: Session, after: int) -> list[str]:
    return [e.name for e in stream.read(session, after=after, limit=100)]


def _editor(app: Flask, session: Session, make_token: MakeToken) -> ApiClient:
    editor = create_agent(session, "editor@example.com", "Eda Editor", PASSWORD, "agent")
    editor.kb_editor = True
    session.commit()
    return ApiClient(app, make_token(editor, "write"))


def _index(app: Flask) -> None:
    while index_pending(app):
        pass


def test_bengali_article_round_trips_with_its_category_revisions_and_events(
    app: Flask, api: ApiClient, session: Session, make_token: MakeToken
) -> None:
    editor = _editor(app, session, make_token)
    category = editor.post(
        "/api/v1/kb/categories", json={"name": "Account", "names": {"bn": "অ্যাকাউন্ট"}}
    )
    assert category.status_code == 201, category.get_data(as_text=True)
    cat = category.get_json()
    assert (cat["name"], cat["names"], cat["article_count"]) == ("Account", {"bn": "অ্যাকাউন্ট"}, 0)

    start = stream.last_id(session)
    made = api.post(
        "/api/v1/kb/articles",
        json={
            "title": BN_TITLE,
            "body": BN_BODY,
            "language": "bn",
            "category": cat["id"],
            "tags": ["পাসওয়ার্ড", "লগইন"],
        },
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    article = made.get_json()
    assert article == api.get(f"/api/v1/kb/articles/{article['id']}").get_json()
    assert (article["title"], article["body"], article["language"]) == (BN_TITLE, BN_BODY, "bn")
    assert article["tags"] == ["পাসওয়ার্ড", "লগইন"]
    assert "<strong>লগইন</strong>" in article["body_html"]
    assert article["category"] == {
        "id": cat["id"], "slug": "account", "name": "Account", "names": {"bn": "অ্যাকাউন্ট"}
    }  # fmt: skip
    # An agent writes drafts; Bengali letters stay whole in the address.
    assert (article["status"], article["slug"]) == ("draft", "পাসওয়ার্ড-ভুলে-গেলে-কী-করবেন")
    assert article["author"]["name"] == "Alex Agent" and article["url"] is None
    assert article["revision_count"] == 1

    changed = api.patch(
        f"/api/v1/kb/articles/{article['id']}", json={"body": BN_BODY + "\n\n৩. আবার লগইন করুন"}
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["body"].endswith("৩. আবার লগইন করুন")
    assert changed.get_json()["revision_count"] == 2
    revisions = session.scalars(
        select(ArticleRevision.number).where(ArticleRevision.article_id == article["id"])
    ).all()
    assert sorted(revisions) == [1, 2]
    assert _names(session, start) == ["article.created", "article.updated"]

    # An editor publishes it: the portal address appears, the event says so.
    published = editor.patch(f"/api/v1/kb/articles/{article['id']}", json={"status": "published"})
    body = published.get_json()
    assert body["status"] == "published" and body["published_at"] is not None
    assert body["url"].startswith("http://") and "/portal/kb/" in body["url"]
    assert app.test_client().get(body["url"]).status_code == 200
    last = stream.read(session, after=start, limit=100)[-1]
    assert (last.name, last.data["changes"]["status"]["to"]) == ("article.updated", "published")
    counted = api.get(f"/api/v1/kb/categories/{cat['id']}").get_json()
    assert counted["article_count"] == 1


def test_the_editors_permissions_hold(
    app: Flask, api: ApiClient, session: Session, agent: Agent, make_token: MakeToken
) -> None:
    editor = _editor(app, session, make_token)
    # An agent writes drafts only, and cannot arrange the categories customers see.
    refused = api.post("/api/v1/kb/articles", json={"title": "Live", "status": "published"})
    assert error_of(refused, 403)["code"] == "forbidden"
    forbidden = error_of(
        api.post(
            "/api/v1/kb/categories", json={"name": "Billing"}, headers={"Accept-Language": "bn"}
        ),
        403,
    )
    assert forbidden["message"] == bn(
        "Only admins and knowledge-base editors can change the categories customers see."
    )
    live = editor.post("/api/v1/kb/articles", json={"title": "Live", "status": "published"})
    assert live.status_code == 201
    live_id = live.get_json()["id"]
    # A published article is changed, unpublished and archived by editors only.
    assert error_of(api.patch(f"/api/v1/kb/articles/{live_id}", json={"title": "X"}), 403)
    assert error_of(api.patch(f"/api/v1/kb/articles/{live_id}", json={"status": "draft"}), 403)
    assert error_of(api.delete(f"/api/v1/kb/articles/{live_id}"), 403)
    assert api.get(f"/api/v1/kb/articles/{live_id}").get_json()["title"] == "Live"
    # A read token reads, never writes.
    reader = ApiClient(app, make_token(agent, "read"))
    assert reader.get(f"/api/v1/kb/articles/{live_id}").status_code == 200
    assert error_of(reader.post("/api/v1/kb/articles", json={"title": "T"}), 403)
    assert session.scalar(select(Article.title).where(Article.id == live_id)) == "Live"
    # DELETE archives (as the editor's Archive): gone from the portal, kept with its history.
    archived = editor.delete(f"/api/v1/kb/articles/{live_id}")
    assert archived.status_code == 200
    assert (archived.get_json()["status"], archived.get_json()["url"]) == ("archived", None)
    assert app.test_client().get(f"/portal/kb/{archived.get_json()['slug']}").status_code == 404


def test_errors_name_the_fields_and_conflicts_are_409(
    app: Flask, api: ApiClient, session: Session, make_token: MakeToken
) -> None:
    editor = _editor(app, session, make_token)
    missing = error_of(api.post("/api/v1/kb/articles", json={"body": "x", "language": "fr"}), 422)
    assert set(missing["fields"]) == {"title", "language"}
    unknown = error_of(api.post("/api/v1/kb/articles", json={"title": "T", "category": 99999}), 422)
    assert set(unknown["fields"]) == {"category"}
    in_bengali = api.post(
        "/api/v1/kb/articles",
        json={"title": "T", "category": 99999},
        headers={"Accept-Language": "bn"},
    )
    assert error_of(in_bengali, 422)["fields"] == {"category": bn("Unknown category.")}
    assert error_of(api.get("/api/v1/kb/articles/99999"), 404)["code"] == "not_found"
    assert error_of(api.get("/api/v1/kb/categories/99999"), 404)["code"] == "not_found"
    # A path no route matches under /api/v1/kb/ is the API's JSON 404 too.
    assert error_of(api.get("/api/v1/kb/articles/not-a-number"), 404)["code"] == "not_found"

    first = api.post("/api/v1/kb/articles", json={"title": "Reset", "slug": "reset"})
    assert first.status_code == 201
    taken = error_of(api.post("/api/v1/kb/articles", json={"title": "Other", "slug": "reset"}), 409)
    assert taken["code"] == "slug_taken"
    billing = editor.post("/api/v1/kb/categories", json={"name": "Billing"}).get_json()
    again = error_of(editor.post("/api/v1/kb/categories", json={"name": "billing"}), 409)
    assert again["code"] == "category_exists"
    other = editor.post("/api/v1/kb/categories", json={"name": "Payments"}).get_json()
    api.patch(f"/api/v1/kb/articles/{first.get_json()['id']}", json={"category": billing["id"]})

    # A category with articles is deleted only when they move somewhere.
    full = error_of(editor.delete(f"/api/v1/kb/categories/{billing['id']}"), 409)
    assert full["code"] == "category_not_empty"
    assert error_of(editor.delete(f"/api/v1/kb/categories/{billing['id']}?move_to=99999"), 422)[
        "fields"
    ] == {"move_to": "Unknown category."}
    gone = editor.delete(f"/api/v1/kb/categories/{billing['id']}?move_to={other['id']}")
    assert gone.status_code == 204
    moved = api.get(f"/api/v1/kb/articles/{first.get_json()['id']}").get_json()
    assert moved["category"]["id"] == other["id"]
    assert session.get(Category, billing["id"]) is None


def test_categories_rename_move_and_page_in_order(
    app: Flask, api: ApiClient, session: Session, make_token: MakeToken
) -> None:
    editor = _editor(app, session, make_token)
    ids = [
        editor.post("/api/v1/kb/categories", json={"name": name}).get_json()["id"]
        for name in ("One", "Two", "Three", "Four")
    ]
    renamed = editor.patch(
        f"/api/v1/kb/categories/{ids[3]}",
        json={"name": "Shipping", "names": {"bn": "ডেলিভারি"}, "position": 0},
    )
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    body = renamed.get_json()
    # The slug never changes on rename: portal links keep working.
    assert (body["name"], body["names"], body["slug"], body["position"]) == (
        "Shipping", {"bn": "ডেলিভারি"}, "four", 0
    )  # fmt: skip
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/kb/categories?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).get_json()
        seen += [c["name"] for c in page["categories"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Shipping", "One", "Two", "Three"]
    assert error_of(api.get("/api/v1/kb/categories?cursor=bogus"), 400)["code"] == "invalid_cursor"


def test_category_changes_through_the_api_are_events(
    app: Flask, session: Session, make_token: MakeToken
) -> None:
    editor = _editor(app, session, make_token)
    start = stream.last_id(session)
    one = editor.post("/api/v1/kb/categories", json={"name": "One"}).get_json()["id"]
    two = editor.post(
        "/api/v1/kb/categories", json={"name": "Two", "names": {"bn": "দুই"}}
    ).get_json()["id"]
    # Refused (a name in use, an unknown target): no event.
    error_of(editor.post("/api/v1/kb/categories", json={"name": "দুই"}), 409)
    error_of(editor.delete(f"/api/v1/kb/categories/{one}?move_to=999999"), 422)
    moved = editor.patch(f"/api/v1/kb/categories/{two}", json={"name": "Second", "position": 0})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert editor.delete(f"/api/v1/kb/categories/{one}").status_code == 204
    events = stream.read(session, start)
    assert [(e.name, e.subject_type, e.subject_id, e.data) for e in events] == [
        ("category.created", "category", one,
         {"name": "One", "names": {}, "slug": "one", "position": 0}),
        ("category.created", "category", two,
         {"name": "Two", "names": {"bn": "দুই"}, "slug": "two", "position": 1}),
        ("category.updated", "category", two,
         {"changes": {"name": {"from": "Two", "to": "Second"}}}),
        ("category.updated", "category", two, {"changes": {"position": {"from": 1, "to": 0}}}),
        ("category.updated", "category", one, {"changes": {"position": {"from": 0, "to": 1}}}),
        ("category.deleted", "category", one,
         {"name": "One", "names": {}, "slug": "one", "moved_to_id": None, "articles": 0}),
    ]  # fmt: skip
    editor_id = session.scalar(select(Agent.id).where(Agent.email == "editor@example.com"))
    assert {(e.actor_type, e.actor_id) for e in events} == {("agent", editor_id)}


def test_list_filters_pages_and_search_in_bengali(
    app: Flask, api: ApiClient, session: Session, make_token: MakeToken
) -> None:
    editor = _editor(app, session, make_token)
    made = []
    for i in range(5):
        made.append(
            editor.post(
                "/api/v1/kb/articles",
                json={"title": f"Shipping times {i}", "body": "Parcels arrive in three days."},
            ).get_json()["id"]
        )
    bengali = editor.post(
        "/api/v1/kb/articles",
        json={"title": BN_TITLE, "body": BN_BODY, "language": "bn", "status": "published"},
    ).get_json()
    # Newest first, each article once over the pages; filters by language and status.
    seen: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/kb/articles?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).get_json()
        seen += [a["id"] for a in page["articles"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [bengali["id"], *reversed(made)]
    only_bn = api.get("/api/v1/kb/articles?language=bn").get_json()["articles"]
    assert [a["id"] for a in only_bn] == [bengali["id"]]
    drafts = api.get("/api/v1/kb/articles?status=draft").get_json()["articles"]
    assert sorted(a["id"] for a in drafts) == sorted(made)

    _index(app)
    # The KB's own search: Bengali word forms, agents see drafts too; ranked, with snippets.
    found = api.get("/api/v1/kb/articles?q=পাসওয়ার্ডের").get_json()
    assert [a["id"] for a in found["articles"]] == [bengali["id"]]
    assert found["articles"][0]["title"] == BN_TITLE and found["articles"][0]["score"] > 0
    assert "<mark>" in found["articles"][0]["snippet"]
    walked: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/kb/articles?q=shipping&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).get_json()
        walked += [a["id"] for a in page["articles"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(walked) == sorted(made)
    assert api.get("/api/v1/kb/articles?q=shipping&status=published").get_json()["articles"] == []
    # The listing's plain pages carry no search fields.
    assert api.get("/api/v1/kb/articles?limit=1").get_json()["articles"][0]["score"] is None
