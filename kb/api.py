"""``/api/v1/kb/articles`` and ``/api/v1/kb/categories``: the knowledge base in the REST API v1,
as agents see it in the KB editor (drafts and internal articles included). Every change goes
through the editor's verbs (:mod:`kb.services`, :mod:`kb.categories`), so the permissions
(:mod:`kb.permissions`: only admins and KB editors publish, change published articles and
arrange categories), the revisions and the events (``article.created``, ``article.updated``,
``category.created``, ``category.updated``, ``category.deleted``) are the editor's. ``DELETE``
of an article archives it, like the editor's *Archive*: customers and search lose it, its
history stays and ``PATCH {"status": "published"}`` brings it back.

Registered by :func:`kb.init_app` through :func:`helpdesk.api.register_resource`
(``helpdesk`` never imports ``kb``). ``?q=`` is the KB's own search (:func:`kb.queries.search`,
hybrid BM25 + embeddings), which sees a change once the worker has indexed it. :func:`register`
also gives webhooks their ``data``: an article or a category as ``GET`` here returns it.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, has_request_context, url_for
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session, selectinload

from helpdesk.api import pagination
from helpdesk.api.auth import me
from helpdesk.api.common import Invalid, errors_doc, id_page, next_cursor
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import ID, date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.links import base_url
from helpdesk.models import Agent
from helpdesk.services import webhook_payloads
from helpdesk.services.errors import ServiceError
from kb import categories, queries, services
from kb.models import Article, ArticleStatus, Category, Visibility

blp = Blueprint(
    "api_kb_articles",
    __name__,
    url_prefix="/api/v1/kb/articles",
    description="Knowledge-base articles as agents see them (drafts and internal ones too): "
    "list, search, read, write; publishing takes an admin or a KB editor.",
)
category_blp = Blueprint(
    "api_kb_categories",
    __name__,
    url_prefix="/api/v1/kb/categories",
    description="The categories of the help center; changing them takes an admin or a KB editor.",
)

LANGUAGES = list(services.LANGUAGES)
STATUSES = [s.value for s in ArticleStatus]
VISIBILITIES = [v.value for v in Visibility]
#: A search ranks at most this many articles (the index's own limit).
SEARCH_DEPTH = 100
_TEXT = validate.Regexp(r"\S")


# --- shapes ------------------------------------------------------------------------------------


class KbCategoryRef(ma.Schema):
    id = ma.fields.Integer(required=True)
    slug = ma.fields.String(required=True)
    name = ma.fields.String(required=True, metadata={"description": "The default (English) name"})
    names = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={"description": 'Translated names by language: {"bn": "..."}'},
    )


class KbCategory(KbCategoryRef):
    position = ma.fields.Integer(required=True, metadata={"description": "0 is first"})
    article_count = ma.fields.Integer(
        required=True, metadata={"description": "Articles of every status and visibility"}
    )
    created_at = date_time(required=True)


class KbCategoryPage(ma.Schema):
    categories = ma.fields.List(ma.fields.Nested(KbCategory), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class KbPageQuery(ma.Schema):
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=100)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


def _names_field(**kw: Any) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=validate.OneOf(list(categories.TRANSLATED))),
        values=ma.fields.String(validate=validate.Length(max=categories.MAX_NAME)),
        metadata={"description": 'Translated names, the whole set: {"bn": "..."}'},
        **kw,
    )


class KbCategoryCreate(ma.Schema):
    name = ma.fields.String(
        required=True, validate=[validate.Length(1, categories.MAX_NAME), _TEXT]
    )
    names = _names_field(load_default=dict)


class KbCategoryPatch(ma.Schema):
    name = ma.fields.String(validate=[validate.Length(1, categories.MAX_NAME), _TEXT])
    names = _names_field()
    position = ma.fields.Integer(
        validate=validate.Range(0, 10_000),
        metadata={"description": "Move to this place in the order (0: first)"},
    )


class KbCategoryDeleteQuery(ma.Schema):
    move_to = ma.fields.Integer(
        validate=ID,
        metadata={"description": "Move the category's articles here (required if it has any)"},
    )


class KbAuthor(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class KbArticleSummary(ma.Schema):
    id = ma.fields.Integer(required=True)
    slug = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    language = ma.fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    status = ma.fields.String(required=True, validate=validate.OneOf(STATUSES))
    visibility = ma.fields.String(required=True, validate=validate.OneOf(VISIBILITIES))
    category = ma.fields.Nested(KbCategoryRef, required=True, allow_none=True)
    tags = ma.fields.List(ma.fields.String(), required=True)
    translation_group = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Translations of one article share it (the first one's id)"},
    )
    author = ma.fields.Nested(KbAuthor, required=True, allow_none=True)
    revision_count = ma.fields.Integer(required=True)
    view_count = ma.fields.Integer(required=True)
    helpful_count = ma.fields.Integer(required=True)
    not_helpful_count = ma.fields.Integer(required=True)
    url = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The portal page; null unless published and public"},
    )
    created_at = date_time(required=True)
    updated_at = date_time(required=True)
    published_at = date_time(required=True, allow_none=True)
    score = ma.fields.Float(
        required=True, allow_none=True, metadata={"description": "Search rank (`q` only)"}
    )
    snippet = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "HTML: escaped text, matches in <mark> (`q` only)"},
    )


class KbTranslation(ma.Schema):
    id = ma.fields.Integer(required=True)
    slug = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    language = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(STATUSES))


class KbArticle(KbArticleSummary):
    body = ma.fields.String(required=True, metadata={"description": "Markdown, as written"})
    body_html = ma.fields.String(required=True, metadata={"description": "Rendered, sanitized"})
    translations = ma.fields.List(ma.fields.Nested(KbTranslation), required=True)


class KbArticlePage(ma.Schema):
    articles = ma.fields.List(ma.fields.Nested(KbArticleSummary), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class KbArticleQuery(ma.Schema):
    q = ma.fields.String(
        validate=validate.Length(1, queries.MAX_QUERY_CHARS),
        metadata={"description": "Search (ranked, at most the best 100; Bengali and English)"},
    )
    category = ma.fields.Integer(validate=ID, metadata={"description": "A category's id"})
    language = ma.fields.String(validate=validate.OneOf(LANGUAGES))
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


def _tags(**kw: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=validate.Length(1, 64)),
        validate=validate.Length(max=50),
        metadata={"description": "The whole set of tags"},
        **kw,
    )


class KbArticleCreate(ma.Schema):
    title = ma.fields.String(
        required=True, validate=[validate.Length(1, services.MAX_TITLE), _TEXT]
    )
    body = ma.fields.String(
        load_default="",
        validate=validate.Length(max=services.MAX_BODY),
        metadata={"description": "Markdown"},
    )
    language = ma.fields.String(validate=validate.OneOf(LANGUAGES), load_default="en")
    category = ma.fields.Integer(validate=ID, allow_none=True, load_default=None)
    tags = _tags(load_default=list)
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES), load_default="public")
    status = ma.fields.String(
        validate=validate.OneOf(STATUSES),
        load_default="draft",
        metadata={"description": "Anything but draft takes an admin or a KB editor"},
    )
    slug = ma.fields.String(
        validate=[validate.Length(1, 200), _TEXT],
        metadata={"description": "The portal address (default: from the title)"},
    )
    translation_of = ma.fields.Integer(
        validate=ID, metadata={"description": "The id of the article this one translates"}
    )


class KbArticlePatch(ma.Schema):
    title = ma.fields.String(validate=[validate.Length(1, services.MAX_TITLE), _TEXT])
    body = ma.fields.String(validate=validate.Length(max=services.MAX_BODY))
    language = ma.fields.String(validate=validate.OneOf(LANGUAGES))
    category = ma.fields.Integer(
        validate=ID, allow_none=True, metadata={"description": "null: none"}
    )
    tags = _tags()
    visibility = ma.fields.String(validate=validate.OneOf(VISIBILITIES))
    status = ma.fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={"description": "Publish, unpublish (draft), archive: admins and KB editors"},
    )
    slug = ma.fields.String(validate=[validate.Length(1, 200), _TEXT])
    translation_of = ma.fields.Integer(
        validate=ID, allow_none=True, metadata={"description": "null: a translation of none"}
    )


# --- JSON --------------------------------------------------------------------------------------


def category_ref(c: Category | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"id": c.id, "slug": c.slug, "name": c.name, "names": dict(c.names or {})}


def category_json(c: Category, count: int) -> dict[str, Any]:
    ref = category_ref(c)
    assert ref is not None
    return {**ref, "position": c.position, "article_count": count, "created_at": iso(c.created_at)}


def authors(session: Session, articles: list[Article]) -> dict[int, dict[str, Any]]:
    """The articles' authors as ``{id: {"id", "name"}}`` (one query)."""
    ids = {a.author_agent_id for a in articles if a.author_agent_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids)))
    return {agent_id: {"id": agent_id, "name": name} for agent_id, name in rows}


def article_summary(
    a: Article, people: dict[int, dict[str, Any]], hit: Any = None
) -> dict[str, Any]:
    return {
        "id": a.id,
        "slug": a.slug,
        "title": a.title,
        "language": a.language,
        "status": a.status.value,
        "visibility": a.visibility.value,
        "category": category_ref(a.category),
        "tags": list(a.tags or []),
        "translation_group": a.translation_group,
        "author": people.get(a.author_agent_id) if a.author_agent_id is not None else None,
        "revision_count": a.revision_count or 0,
        "view_count": a.view_count or 0,
        "helpful_count": a.helpful_count or 0,
        "not_helpful_count": a.not_helpful_count or 0,
        "url": article_url(a) if a.public else None,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
        "published_at": iso(a.published_at),
        "score": None if hit is None else float(hit.score),
        "snippet": None if hit is None else hit.snippet,
    }


def article_url(a: Article) -> str:
    """The portal page's full address."""
    if has_request_context():
        return url_for("portal.article", slug=a.slug, _external=True)
    # The webhook worker: no request to take the address from.
    with current_app.test_request_context(base_url=base_url(current_app)):
        return url_for("portal.article", slug=a.slug, _external=True)


def article_json(session: Session, a: Article) -> dict[str, Any]:
    return {
        **article_summary(a, authors(session, [a])),
        "body": a.body_md,
        "body_html": a.body_html,
        "translations": [
            {"id": t.id, "slug": t.slug, "title": t.title, "language": t.language,
             "status": t.status.value}
            for t in queries.translations(session, a, agent=True)
        ],
    }  # fmt: skip


def _article(article_id: int) -> Article:
    # As the editor reads it (an agent sees drafts and internal articles).
    return services.access_article_id(db.session, article_id, agent=True)


def _category(category_id: int) -> Category:
    return categories.get_category(db.session, category_id)


def _known_category(category_id: int | None, field: str) -> Category | None:
    if category_id is None:
        return None
    found = db.session.get(Category, category_id)
    if found is None:
        raise Invalid({field: _("Unknown category.")})
    return found


def _known_article(article_id: int | None, field: str) -> Article | None:
    if article_id is None:
        return None
    found = db.session.get(Article, article_id)
    if found is None:
        raise Invalid({field: _("Unknown article.")})
    return found


def _with_relations(q: Select[Any]) -> Select[Any]:
    return q.options(selectinload(Article.category))


# --- articles ----------------------------------------------------------------------------------


def _filtered(q: Select[Any], args: dict[str, Any]) -> Select[Any]:
    if args.get("category") is not None:
        q = q.where(Article.category_id == args["category"])
    if args.get("language"):
        q = q.where(Article.language == args["language"])
    if args.get("status"):
        q = q.where(Article.status == ArticleStatus(args["status"]))
    if args.get("visibility"):
        q = q.where(Article.visibility == Visibility(args["visibility"]))
    return q


@blp.route("", methods=["GET"])
@blp.arguments(KbArticleQuery, location="query", as_kwargs=True)
@blp.response(200, KbArticlePage)
@errors_doc(blp, 400, 401, 429)
def list_articles(**args: Any) -> dict[str, Any]:
    """Articles, newest first (`category`, `language`, `status`, `visibility` filter); `q`
    searches them, best match first."""
    limit = int(args["limit"])
    if args.get("q"):
        return _search(args, limit)
    q = _with_relations(
        id_page(_filtered(select(Article), args), Article.id, "articles", args.get("cursor"), limit)
    )
    rows = list(db.session.scalars(q))
    people = authors(db.session, rows[:limit])
    return {
        "articles": [article_summary(a, people) for a in rows[:limit]],
        "next_cursor": next_cursor(rows, "articles", limit),
    }


def _search(args: dict[str, Any], limit: int) -> dict[str, Any]:
    """A page of the search's ranking; the cursor holds where the next page starts. Filters
    apply to the page's hits, so a filtered page may hold fewer than ``limit`` articles."""
    start = 0
    if args.get("cursor"):
        values = pagination.decode(args["cursor"], "kb-search")
        if len(values) != 1 or not isinstance(values[0], int) or not 0 < values[0] < SEARCH_DEPTH:
            raise ServiceError(_("Invalid page cursor."), code="invalid_cursor")
        start = values[0]
    result = queries.search(
        args["q"], lang=args.get("language"), limit=min(start + limit + 1, SEARCH_DEPTH), agent=True
    )
    hits = result.hits[start : start + limit]
    found = {
        a.id: a
        for a in db.session.scalars(
            _with_relations(
                _filtered(select(Article).where(Article.id.in_([h.id for h in hits])), args)
            )
        )
    }
    end = start + limit
    people = authors(db.session, list(found.values()))
    return {
        "articles": [article_summary(found[h.id], people, h) for h in hits if h.id in found],
        "next_cursor": pagination.encode("kb-search", [end]) if len(result.hits) > end else None,
    }


@blp.route("/<int:article_id>", methods=["GET"])
@blp.response(200, KbArticle)
@errors_doc(blp, 401, 404, 429)
def get_article(article_id: int) -> dict[str, Any]:
    """One article with its text (Markdown and HTML), category and translations."""
    return article_json(db.session, _article(article_id))


@blp.route("", methods=["POST"])
@blp.arguments(KbArticleCreate)
@blp.response(201, KbArticle)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_article(data: dict[str, Any]) -> Any:
    """Write an article (a draft unless an admin or a KB editor publishes it at once); 409
    `slug_taken` when another article has the address."""
    article = services.create_article(
        db.session,
        title=data["title"],
        body=data["body"],
        language=data["language"],
        category=_known_category(data.get("category"), "category"),
        tags=data["tags"],
        visibility=data["visibility"],
        status=data["status"],
        slug=data.get("slug"),
        author=me(),
        translation_of=_known_article(data.get("translation_of"), "translation_of"),
    )
    db.session.flush()
    return commit_response(article_json(db.session, article), 201)


@blp.route("/<int:article_id>", methods=["PATCH"])
@blp.arguments(KbArticlePatch)
@blp.response(200, KbArticle)
@errors_doc(blp, 400, 401, 403, 404, 409, 422, 429)
def update_article(changes: dict[str, Any], article_id: int) -> Any:
    """Change the fields given, as the editor does (a new revision when title, text or tags
    change). A published article, and `status`, take an admin or a KB editor."""
    article = _article(article_id)
    fields: dict[str, Any] = {
        name: changes[name]
        for name in ("title", "body", "language", "tags", "visibility", "slug")
        if name in changes
    }
    if "category" in changes:
        fields["category"] = _known_category(changes["category"], "category")
    if "translation_of" in changes:
        fields["translation_of"] = _known_article(changes["translation_of"], "translation_of")
    if fields:
        services.update_article(db.session, article, author=me(), **fields)
    if "status" in changes:
        services.set_status(db.session, article, changes["status"], me())
    db.session.flush()
    return commit_response(article_json(db.session, article), 200)


@blp.route("/<int:article_id>", methods=["DELETE"])
@blp.response(200, KbArticle)
@errors_doc(blp, 401, 403, 404, 429)
def delete_article(article_id: int) -> Any:
    """Archive the article (admins and KB editors), as the editor's *Archive* does: customers
    and search lose it; it keeps its revisions and can be published again."""
    article = _article(article_id)
    services.archive_article(db.session, article, me())
    db.session.flush()
    return commit_response(article_json(db.session, article), 200)


# --- categories --------------------------------------------------------------------------------


def _counted(rows: list[Category]) -> list[dict[str, Any]]:
    counts = categories.counts(db.session)
    return [category_json(c, counts.get(c.id, 0)) for c in rows]


@category_blp.route("", methods=["GET"])
@category_blp.arguments(KbPageQuery, location="query", as_kwargs=True)
@category_blp.response(200, KbCategoryPage)
@errors_doc(category_blp, 400, 401, 429)
def list_categories(limit: int, cursor: str | None = None) -> dict[str, Any]:
    """Categories in the help center's order, with their number of articles."""
    q = select(Category)
    if cursor:
        values = pagination.decode(cursor, "kb-categories")
        if len(values) != 2 or not all(isinstance(v, int) and 0 <= v < 2**31 for v in values):
            raise ServiceError(_("Invalid page cursor."), code="invalid_cursor")
        q = q.where(tuple_(Category.position, Category.id) > (values[0], values[1]))
    rows = list(db.session.scalars(q.order_by(Category.position, Category.id).limit(limit + 1)))
    last = rows[limit - 1] if len(rows) > limit else None
    return {
        "categories": _counted(rows[:limit]),
        "next_cursor": None
        if last is None
        else pagination.encode("kb-categories", [last.position, last.id]),
    }


@category_blp.route("/<int:category_id>", methods=["GET"])
@category_blp.response(200, KbCategory)
@errors_doc(category_blp, 401, 404, 429)
def get_category(category_id: int) -> dict[str, Any]:
    """One category."""
    category = _category(category_id)
    return category_json(category, categories.article_count(db.session, category))


@category_blp.route("", methods=["POST"])
@category_blp.arguments(KbCategoryCreate)
@category_blp.response(201, KbCategory)
@category_blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(category_blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_category(data: dict[str, Any]) -> Any:
    """A new category, placed last (admins and KB editors); 409 `category_exists` when a
    category has the name (or a translated one)."""
    category = categories.create_category(db.session, data["name"], data["names"], actor=me())
    return commit_response(category_json(category, 0), 201)


@category_blp.route("/<int:category_id>", methods=["PATCH"])
@category_blp.arguments(KbCategoryPatch)
@category_blp.response(200, KbCategory)
@errors_doc(category_blp, 400, 401, 403, 404, 409, 422, 429)
def update_category(changes: dict[str, Any], category_id: int) -> Any:
    """Rename (`name`, `names`: the slug stays, links keep working) or move (`position`)
    a category (admins and KB editors)."""
    category = _category(category_id)
    if "name" in changes or "names" in changes:
        categories.rename_category(
            db.session,
            category,
            changes.get("name", category.name),
            changes.get("names", category.names),
            actor=me(),
        )
    if "position" in changes:
        order = [c.id for c in categories.ordered(db.session)]
        offset = min(int(changes["position"]), len(order) - 1) - order.index(category.id)
        categories.move_category(db.session, category, offset, actor=me())
    db.session.flush()
    return commit_response(
        category_json(category, categories.article_count(db.session, category)), 200
    )


@category_blp.route("/<int:category_id>", methods=["DELETE"])
@category_blp.arguments(KbCategoryDeleteQuery, location="query", as_kwargs=True)
@category_blp.response(204)
@errors_doc(category_blp, 401, 403, 404, 409, 422, 429)
def delete_category(category_id: int, move_to: int | None = None) -> Any:
    """Delete a category (admins and KB editors). One with articles (drafts and internal ones
    count) answers 409 `category_not_empty` unless `move_to` names where they go."""
    category = _category(category_id)
    target = _known_category(move_to, "move_to")
    categories.delete_category(db.session, category, move_to=target, actor=me())
    db.session.commit()
    return "", 204


# --- webhooks ----------------------------------------------------------------------------------


def article_payload(session: Session, article_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for an article: as ``GET /api/v1/kb/articles/<id>`` returns it."""
    article = session.get(Article, article_id, options=[selectinload(Article.category)])
    return article_json(session, article) if article is not None else None


def category_payload(session: Session, category_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a category: as ``GET /api/v1/kb/categories/<id>`` returns it
    (None once deleted: ``category.deleted`` carries the event's own data)."""
    category = session.get(Category, category_id)
    if category is None:
        return None
    return category_json(category, categories.article_count(session, category))


def register(app: Any) -> None:
    """Serve both resources in the REST API v1 and give webhooks their objects (called by
    :func:`kb.init_app`)."""
    from helpdesk.api import register_resource

    register_resource(app, blp, "KB articles")
    register_resource(app, category_blp, "KB categories")
    webhook_payloads.register_payload("article", article_payload)
    webhook_payloads.register_payload("category", category_payload)
