"""Web views of the knowledge base: the agents' editor (live preview, revisions, publish), the
KB report, and the public search API (``GET /api/v1/kb/search?q=&lang=``) that serves the
portal and the chat widget. Customers' KB pages live in the portal (channels/portal)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.extensions import db, limiter
from helpdesk.i18n import _, _l
from helpdesk.links import base_url
from helpdesk.models import Message, Ticket
from helpdesk.services.errors import Forbidden, NotFound, ServiceError
from helpdesk.web.agent import agent_required, me
from helpdesk.web.forms import choices
from kb import categories, queries, services
from kb.diff import diff_revisions
from kb.indexer import get_index, pending_count
from kb.models import Article, ArticleRevision, ArticleStatus, Category, KbEventKind

agent_bp = Blueprint("kb", __name__, url_prefix="/agent/kb")
api_bp = Blueprint("kb_api", __name__, url_prefix="/api/v1/kb")

LANGUAGE_CHOICES = [("en", "English"), ("bn", "বাংলা")]
VISIBILITY_LABELS = {"public": _l("Public"), "internal": _l("Internal (agents only)")}
STATUS_LABELS = {"draft": _l("Draft"), "published": _l("Published"), "archived": _l("Archived")}


@agent_bp.app_template_filter("kb_status_label")
def kb_status_label(value: object) -> str:
    """An article's status in the reader's language (``{{ article.status|kb_status_label }}``)."""
    key = str(getattr(value, "value", value))
    return str(STATUS_LABELS.get(key, key))


class ArticleForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=300)])
    slug = StringField(_l("Address (slug)"), validators=[Optional(), Length(max=200)])
    # Choices of every select are set per request (_prepared): labels are translated then.
    language = SelectField(_l("Language"), choices=[])
    # The existing categories: new ones are made on the categories page, so a typo in the
    # editor cannot create a stray category.
    category = SelectField(_l("Category"), choices=[])
    tags = StringField(_l("Tags"), validators=[Optional(), Length(max=500)])
    visibility = SelectField(_l("Visibility"), choices=[])
    translation_of = StringField(
        _l("Translation of (slug)"), validators=[Optional(), Length(max=200)]
    )
    body = TextAreaField(_l("Article (Markdown)"), validators=[Optional(), Length(max=200_000)])


def _article(article_id: int) -> Article:
    try:
        return services.access_article_id(db.session, article_id, agent=True)
    except NotFound:
        abort(404)


def _translation_target(slug: str | None) -> Article | None:
    if not slug:
        return None
    target = db.session.scalar(select(Article).where(Article.slug == services.slugify(slug)))
    if target is None:
        raise ServiceError(_("No article has the address %(slug)s.", slug=slug))
    return target


def _prepared(form: ArticleForm) -> ArticleForm:
    lang = str(get_locale() or "")
    form.language.choices = choices(LANGUAGE_CHOICES)
    form.visibility.choices = choices(VISIBILITY_LABELS.items())
    form.category.choices = choices(
        [("", _("No category"))]
        + [(str(c.id), c.label(lang)) for c in categories.ordered(db.session)]
    )
    return form


def _chosen_category(form: ArticleForm) -> Category | None:
    raw = form.category.data or ""
    return db.session.get(Category, int(raw)) if raw.isdigit() else None


def _tags(raw: str | None) -> list[str]:
    return [t for t in (raw or "").split(",") if t.strip()]


@agent_bp.get("/")
@agent_required
def articles() -> str:
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    stmt = (
        select(Article).options(selectinload(Article.category)).order_by(Article.updated_at.desc())
    )
    if status in STATUS_LABELS:
        stmt = stmt.where(Article.status == ArticleStatus(status))
    hits = None
    if q:
        hits = queries.search(q, lang=None, limit=50, agent=True).hits
        rows = []
    else:
        rows = list(db.session.scalars(stmt.limit(500)))
    index = get_index()
    return render_template(
        "kb/articles.html",
        articles=rows,
        hits=hits,
        q=q,
        status=status,
        status_labels=STATUS_LABELS,
        semantic=index.semantic_available,
        indexed=index.doc_count(),
        pending=pending_count(db.session),
    )


@agent_bp.route("/new", methods=["GET", "POST"])
@agent_required
def new() -> str | Response | tuple[str, int]:
    form = _prepared(ArticleForm())
    if form.validate_on_submit():
        try:
            article = services.create_article(
                db.session,
                title=form.title.data or "",
                body=form.body.data or "",
                language=form.language.data or "en",
                category=_chosen_category(form),
                tags=_tags(form.tags.data),
                visibility=form.visibility.data or "public",
                slug=form.slug.data or None,
                author=me(),
                translation_of=_translation_target(form.translation_of.data),
            )
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("kb/edit.html", form=form, article=None), 400
        db.session.commit()
        flash(_("Draft saved."), "success")
        return redirect(url_for("kb.edit", article_id=article.id))
    status = 400 if request.method == "POST" else 200
    return render_template("kb/edit.html", form=form, article=None), status


@agent_bp.route("/<int:article_id>", methods=["GET", "POST"])
@agent_required
def edit(article_id: int) -> str | Response | tuple[str, int]:
    article = _article(article_id)
    form = _prepared(ArticleForm())
    if request.method == "GET":
        form.title.data = article.title
        form.slug.data = article.slug
        form.language.data = article.language
        form.category.data = str(article.category_id or "")
        form.tags.data = ", ".join(article.tags)
        form.visibility.data = article.visibility.value
        group = article.translation_group
        original = db.session.get(Article, group) if group and group != article.id else None
        form.translation_of.data = original.slug if original else ""
        form.body.data = article.body_md
    elif form.validate_on_submit():
        try:
            services.update_article(
                db.session,
                article,
                author=me(),
                title=form.title.data,
                body=form.body.data or "",
                language=form.language.data,
                category=_chosen_category(form),
                tags=_tags(form.tags.data),
                visibility=form.visibility.data,
                slug=form.slug.data or None,
                translation_of=_translation_target(form.translation_of.data),
            )
        except Forbidden:
            db.session.rollback()
            raise  # a 403 page saying which permission is missing
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("kb/edit.html", form=form, article=_article(article_id)), 400
        db.session.commit()
        flash(_("Article saved."), "success")
        return redirect(url_for("kb.edit", article_id=article.id))
    else:
        return render_template("kb/edit.html", form=form, article=article), 400
    return render_template(
        "kb/edit.html",
        form=form,
        article=article,
        translations=queries.translations(db.session, article, agent=True),
    )


@agent_bp.post("/preview")
@agent_required
def preview() -> Response:
    """Live preview: the same sanitized HTML readers get."""
    body = request.form.get("body", "")
    if len(body) > services.MAX_BODY:
        return Response(status=413)
    return jsonify({"html": services.render_markdown(body)})


@agent_bp.post("/<int:article_id>/status")
@agent_required
def change_status(article_id: int) -> Response:
    article = _article(article_id)
    form = FlaskForm()
    target = request.form.get("status", "")
    if form.validate_on_submit() and target in STATUS_LABELS:
        services.set_status(db.session, article, target, me())  # Forbidden: a 403
        db.session.commit()
        flash(_("Article is now: %(status)s", status=STATUS_LABELS[target]), "success")
    else:
        flash(_("Unknown status."), "error")
    return redirect(url_for("kb.edit", article_id=article.id))


@agent_bp.get("/<int:article_id>/revisions")
@agent_required
def revisions(article_id: int) -> str:
    article = _article(article_id)
    revs = db.session.scalars(
        select(ArticleRevision)
        .where(ArticleRevision.article_id == article.id)
        .order_by(ArticleRevision.number.desc())
        .options(selectinload(ArticleRevision.author_agent))
    ).all()
    return render_template("kb/revisions.html", article=article, revisions=revs)


def _revision_number(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        abort(404)


@agent_bp.get("/<int:article_id>/revisions/compare")
@agent_required
def compare(article_id: int) -> str:
    """What changed between two revisions (``?from=N&to=M``; default: the latest change)."""
    article = _article(article_id)
    latest = article.revision_count or 1
    new_no = _revision_number("to", latest)
    old_no = _revision_number("from", max(1, new_no - 1))
    try:
        old = services.get_revision(db.session, article, old_no)
        new = services.get_revision(db.session, article, new_no)
    except NotFound:
        abort(404)
    change = diff_revisions(old.title, old.body_md, new.title, new.body_md)
    numbers = list(range(latest, 0, -1))
    return render_template(
        "kb/compare.html",
        article=article,
        old=old,
        new=new,
        diff=change,
        tags_changed=list(old.tags or []) != list(new.tags or []),
        numbers=numbers,
    )


@agent_bp.post("/<int:article_id>/revisions/<int:number>/restore")
@agent_required
def restore(article_id: int, number: int) -> Response:
    article = _article(article_id)
    if not FlaskForm().validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("kb.revisions", article_id=article.id))
    try:
        changed = services.restore_revision(db.session, article, number, me())
    except NotFound:
        abort(404)
    except Forbidden:
        db.session.rollback()
        raise
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("kb.revisions", article_id=article.id))
    db.session.commit()
    if changed:
        flash(_("Revision %(n)d restored as a new revision.", n=number), "success")
    else:
        flash(_("The article already reads like revision %(n)d.", n=number), "info")
    return redirect(url_for("kb.edit", article_id=article.id))


@agent_bp.get("/report")
@agent_required
def report() -> str:
    try:
        days = min(max(int(request.args.get("days", 30)), 1), 365)
    except ValueError:
        days = 30
    return render_template("kb/report.html", report=queries.report(db.session, days))


# --- suggestions on the ticket page (registered hook) -----------------------------------------


def suggest_for_ticket(ticket: Ticket) -> list[dict[str, Any]]:
    """Articles that may answer this ticket: subject plus the customer's first words."""
    first = db.session.scalar(
        select(Message.body_text)
        .where(Message.ticket_id == ticket.id, Message.internal.is_(False))
        .order_by(Message.id)
        .limit(1)
    )
    words = f"{ticket.subject} {first or ''}".split()[:40]
    try:
        hits = queries.search(" ".join(words), lang=ticket.language, limit=5, agent=True).hits
    except Exception:  # the sidebar must never break the ticket page
        current_app.logger.exception("KB suggestions failed")
        return []
    base = base_url()
    return [
        {
            "title": h.title,
            "slug": h.slug,
            "snippet": h.snippet,
            "internal": h.visibility != "public" or h.status != "published",
            "url": f"{base}{url_for('portal.article', slug=h.slug)}",
        }
        for h in hits
    ]


# --- the public search API ---------------------------------------------------------------------


def _search_limit() -> str:
    return str(current_app.config["RATELIMIT_KB_SEARCH"])


@api_bp.get("/search")
@limiter.limit(_search_limit)
def api_search() -> Response | tuple[Response, int]:
    """``{query, did_you_mean, results: [{slug, title, language, score, snippet, url}]}``.

    Customers (and anyone) get public, published articles; an agent session with
    ``internal=1`` also gets internal ones and drafts. ``source=contact`` marks the contact
    form's as-you-type suggestions, which are not recorded as searches (the page reports
    impressions itself).
    """
    q = request.args.get("q", "")
    if len(q) > queries.MAX_QUERY_CHARS:
        body = {"error": _("The search is too long."), "code": "too_long", "status": 400}
        return jsonify(body), 400
    lang = request.args.get("lang") or None
    if lang not in (None, "en", "bn"):
        body = {"error": _("Unknown language."), "code": "invalid", "status": 400}
        return jsonify(body), 400
    try:
        limit = min(max(int(request.args.get("limit", 5)), 1), 20)
    except ValueError:
        limit = 5
    agent = bool(getattr(current_user, "is_agent", False)) and request.args.get("internal") == "1"
    result = queries.search(q, lang=lang, limit=limit, agent=agent)
    source = request.args.get("source", "api")[:16]
    if result.query and source != "contact" and not agent:
        record_search(result.query, lang, len(result.hits), source)
    return jsonify(
        {
            "query": result.query,
            "did_you_mean": result.did_you_mean,
            "results": [
                {
                    "id": h.id,
                    "slug": h.slug,
                    "title": h.title,
                    "language": h.language,
                    "score": h.score,
                    "snippet": h.snippet,
                    "url": url_for("portal.article", slug=h.slug),
                }
                for h in result.hits
            ],
        }
    )


def visitor_id() -> str:
    """A random id for this browser session, tying its KB events together (not personal)."""
    import secrets

    vid = session.get("kb_visitor")
    if not isinstance(vid, str):
        vid = secrets.token_urlsafe(12)
        session["kb_visitor"] = vid
    return vid


def record_search(query: str, lang: str | None, count: int, source: str) -> None:
    """Record a search from a GET handler in its own short transaction.

    The request's transaction is read-only (a GET); this one only inserts, so on SQLite it
    takes the write lock at its first statement and never upgrades from a read.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        with db.transaction(app) as s:
            services.record_event(
                s,
                KbEventKind.SEARCH,
                query=query,
                language=lang,
                result_count=count,
                source=source,
                visitor=visitor_id(),
            )
    except Exception:  # analytics must never cost a customer their answer
        current_app.logger.exception("recording a KB search failed")
