"""The customer portal (adapter): knowledge-base pages, the contact form with suggestions, and
magic-link ticket tracking ("My tickets"). Every ticket change goes through the core services:
new tickets and replies through ``services.inbound.receive`` (channel ``portal``), close and
reopen through ``services.tickets.set_status``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import PurePath
from typing import Any, TypeVar, cast

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
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from channels.portal import accounts, magic
from channels.portal import custom_fields as portal_fields
from channels.portal.forms import (
    ContactForm,
    EmptyForm,
    PasswordForm,
    ReplyForm,
    SignInForm,
    VoteForm,
)
from helpdesk.extensions import db, limiter
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment, InboundMessage
from helpdesk.models import (
    Customer,
    IdentityKind,
    Message,
    MessageKind,
    Ticket,
    TicketStatus,
    ticket_participants,
)
from helpdesk.services import customer_forms, tickets
from helpdesk.services.access import access_ticket_by_number
from helpdesk.services.custom_fields import FieldErrors
from helpdesk.services.customers import find_by_identity, normalize_email
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.inbound import receive
from kb import queries
from kb import services as kb
from kb.models import Category, KbEventKind
from kb.views import record_search, visitor_id

bp = Blueprint("portal", __name__, url_prefix="/portal")

F = TypeVar("F", bound=Callable[..., Any])


def _lang() -> str:
    lang = str(get_locale() or "en")
    return lang if lang in ("en", "bn") else "en"


def _customer() -> Customer | None:
    user = current_user._get_current_object() if current_user else None
    return user if isinstance(user, Customer) else None


def customer_required(view: F) -> F:
    """Portal pages for a signed-in customer; others go to the sign-in page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if _customer() is None:
            return redirect(url_for("portal.signin", next=request.path))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _portal_limit() -> str:
    return str(current_app.config["RATELIMIT_PORTAL"])


def _email_limit() -> str:
    return str(current_app.config["RATELIMIT_PORTAL_EMAIL"])


def _email_key() -> str:
    # Per requester and address: one requester cannot flood an inbox, and nobody can use up a
    # customer's own requests (keyed on the address alone, five requests from anywhere blocked
    # the customer's sign-in for an hour). What many requesters together send to one inbox is
    # capped by magic.issue (PORTAL_LINK_MAILS_PER_HOUR), without refusing anyone.
    address = (request.form.get("email") or "").strip().lower()[:320]
    return f"portal-email:{get_remote_address()}:{address}"


def _events_limit() -> str:
    return str(current_app.config["RATELIMIT_PORTAL_EVENTS"])


# --- knowledge base ---------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    return render_template(
        "portal/home.html",
        categories=queries.categories(db.session),
        popular=queries.popular(db.session, _lang()),
    )


@bp.get("/search")
def search() -> str:
    q = request.args.get("q", "").strip()
    result = queries.search(q, lang=_lang(), limit=20)
    if result.query:
        record_search(result.query, _lang(), len(result.hits), "portal")
    return render_template("portal/search.html", result=result, q=q)


@bp.get("/c/<slug>")
def category(slug: str) -> str:
    cat = db.session.scalar(select(Category).where(Category.slug == slug))
    articles = queries.category_articles(db.session, cat) if cat else []
    if cat is None or not articles:
        abort(404)
    return render_template("portal/category.html", category=cat, articles=articles)


def _public_article(slug: str) -> Any:
    try:
        return kb.access_article(db.session, slug, agent=False)
    except NotFound:
        abort(404)


@bp.get("/kb/<slug>")
def article(slug: str) -> str:
    a = _public_article(slug)
    return render_template(
        "portal/article.html",
        article=a,
        related=queries.related(a),
        translations=queries.translations(db.session, a),
        from_contact=request.args.get("from") == "contact",
        vote_form=VoteForm(),
        answered_form=EmptyForm(),
        voted=session.get("kb_voted", {}).get(str(a.id)),
    )


@bp.post("/kb/<slug>/vote")
@limiter.limit(_events_limit)
def vote(slug: str) -> Response:
    a = _public_article(slug)
    form = VoteForm()
    helpful = request.form.get("helpful")
    if not form.validate_on_submit() or helpful not in ("yes", "no"):
        flash(_("Your vote could not be recorded. Please try again."), "error")
        return redirect(url_for("portal.article", slug=a.slug))
    kb.vote(
        db.session,
        a,
        helpful == "yes",
        comment=form.comment.data or "",
        visitor=visitor_id(),
        customer=_customer(),
    )
    db.session.commit()
    voted = dict(session.get("kb_voted", {}))
    voted[str(a.id)] = helpful
    session["kb_voted"] = voted
    flash(_("Thank you for your feedback."), "success")
    return redirect(url_for("portal.article", slug=a.slug) + "#feedback")


@bp.post("/kb/<slug>/answered")
@limiter.limit(_events_limit)
def answered(slug: str) -> Response:
    """ "This answered my question" on an article suggested beside the contact form."""
    a = _public_article(slug)
    if EmptyForm().validate_on_submit():
        kb.record_event(
            db.session,
            KbEventKind.DEFLECTION,
            article=a,
            source="contact",
            visitor=visitor_id(),
            language=a.language,
        )
        db.session.commit()
        flash(_("Glad we could help!"), "success")
    return redirect(url_for("portal.article", slug=a.slug))


_BEACON_KINDS = {
    "impression": KbEventKind.IMPRESSION,
    "click": KbEventKind.CLICK,
    "view": KbEventKind.VIEW,
}


@bp.post("/events")
@limiter.limit(_events_limit)
def events() -> tuple[Response, int]:
    """Analytics beacons from portal.js: ``kind`` (impression|click|view), ``article_id``,
    ``source`` (contact|portal), ``query``. Only public articles are accepted."""
    kind = _BEACON_KINDS.get(request.form.get("kind", ""))
    try:
        article_ids = [int(i) for i in request.form.getlist("article_id")][:10]
    except ValueError:
        article_ids = []
    if kind is None or not article_ids:
        return jsonify({"error": _("Unknown event."), "status": 400}), 400
    source = "contact" if request.form.get("source") == "contact" else "portal"
    query = request.form.get("query") or None
    for article_id in article_ids:
        try:
            a = kb.access_article_id(db.session, article_id, agent=False)
        except NotFound:
            continue
        kb.record_event(
            db.session,
            kind,
            article=a,
            source=source,
            query=query if kind != KbEventKind.VIEW else None,
            visitor=visitor_id(),
            language=_lang(),
        )
    db.session.commit()
    return jsonify({"ok": True}), 200


# --- contact form --------------------------------------------------------------------------


def _read_uploads(files: list[FileStorage]) -> tuple[list[InboundAttachment], str | None]:
    limit = int(current_app.config["ATTACHMENT_MAX_BYTES"])
    allowed = {e.lower() for e in current_app.config["PORTAL_ATTACHMENT_TYPES"]}
    out: list[InboundAttachment] = []
    for f in files:
        if not f or not f.filename:
            continue
        ext = PurePath(f.filename).suffix.lower()
        if ext not in allowed:
            return [], _(
                "%(name)s: this type of file cannot be attached. Allowed: %(types)s",
                name=f.filename,
                types=" ".join(sorted(allowed)),
            )
        data = f.read(limit + 1)
        if len(data) > limit:
            return [], _(
                "%(name)s is larger than %(mb)d MB.", name=f.filename, mb=limit // (1024 * 1024)
            )
        out.append(InboundAttachment(f.filename, f.mimetype or "application/octet-stream", data))
    return out, None


@bp.route("/contact", methods=["GET", "POST"])
@limiter.limit(_portal_limit, methods=["POST"])
@limiter.limit(_email_limit, key_func=_email_key, methods=["POST"])
def contact() -> str | tuple[str, int] | Response:
    form = ContactForm()
    me = _customer()
    fields = customer_forms.form_fields(db.session, "portal")
    page = _ContactPage(form, fields)
    if request.method == "GET" and me is not None:
        form.email.data = me.email
        form.name.data = me.name
        page.values = portal_fields.prefilled(fields, me)
    if request.method == "POST":
        if form.website.data:
            return render_template("portal/thanks.html", number=None)
        page.values = portal_fields.read_answers(fields, request.form)
        valid = form.validate_on_submit()
        answers = _check_answers(page, me)
        if not valid or answers is None:
            # Everything typed stays in the form; the errors say what to fix.
            return page.render(400)
        attachments, error = _read_uploads(form.attachments.data or [])
        if error:
            form.attachments.errors = [error, _("Your text is kept; attach the files again.")]
            return page.render(400)
        lang = _lang()
        try:
            received = receive(
                db.session,
                InboundMessage(
                    channel_kind="portal",
                    identity_kind="email",
                    sender_address=form.email.data or "",
                    sender_name=(form.name.data or "").strip() or None,
                    subject=form.subject.data or "",
                    text=form.description.data or "",
                    attachments=attachments,
                    language=lang,
                    custom=answers.custom or None,
                    customer_custom=answers.customer_custom or None,
                ),
            )
            kb.record_ticket_submitted(
                db.session, received.ticket.id, visitor=visitor_id(), language=lang
            )
            magic.issue(
                db.session,
                received.ticket.customer,
                "ticket",
                ticket=received.ticket,
                mail="confirmation",
                language=lang,
            )
        except ServiceError as exc:
            db.session.rollback()
            form.email.errors = [str(exc)]
            return page.render(400)
        db.session.commit()
        return render_template(
            "portal/thanks.html",
            number=received.ticket.number,
            email=received.ticket.customer.email,
        )
    return page.render()


class _ContactPage:
    """The contact form with its custom fields: what was typed in them and their errors."""

    def __init__(self, form: ContactForm, fields: list[customer_forms.FormField]) -> None:
        self.form = form
        self.fields = fields
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def render(self, status: int = 200) -> tuple[str, int]:
        page = render_template(
            "portal/contact.html",
            form=self.form,
            custom_fields=self.fields,
            custom_values=self.values,
            custom_errors=self.errors,
            lang=_lang(),
        )
        return page, status


def _check_answers(page: _ContactPage, me: Customer | None) -> customer_forms.Answers | None:
    """The custom answers cleaned, or None with ``page.errors`` set. The customer they would
    land on is looked up by the typed address: only when that is the signed-in customer may
    the answers replace values the record holds."""
    if not page.fields:
        return customer_forms.Answers()
    owner: Customer | None = None
    try:
        email = normalize_email(page.form.email.data or "")
        owner = find_by_identity(db.session, IdentityKind.EMAIL, email)
    except ServiceError:
        pass  # the email field reports its own error
    try:
        return customer_forms.check_answers(
            page.fields,
            portal_fields.grouped(page.fields, page.values),
            owner,
            verified=owner is not None and me is not None and owner.id == me.id,
        )
    except FieldErrors as exc:
        page.errors = exc.fields
        return None


# --- signing in ----------------------------------------------------------------------------


def _sign_in(customer: Customer) -> None:
    # A fresh session (no fixation), keeping the reader's language and analytics visitor.
    keep = {k: session[k] for k in ("lang", "kb_visitor") if k in session}
    session.clear()
    session.update(keep)
    login_user(customer)


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit(_portal_limit, methods=["POST"])
@limiter.limit(_email_limit, key_func=_email_key, methods=["POST"])
def signin() -> str | tuple[str, int] | Response:
    form = SignInForm()
    if request.method == "POST":
        if form.website.data:
            return render_template("portal/signin_sent.html")
        if not form.validate_on_submit():
            return render_template("portal/signin.html", form=form), 400
        try:
            email = normalize_email(form.email.data or "")
        except ServiceError as exc:
            form.email.errors = [str(exc)]
            return render_template("portal/signin.html", form=form), 400
        if form.password.data:
            customer = accounts.authenticate(db.session, email, form.password.data)
            if customer is None:
                flash(_("Wrong email or password."), "error")
                return render_template("portal/signin.html", form=form), 400
            _sign_in(customer)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        found = find_by_identity(db.session, IdentityKind.EMAIL, email)
        if found is not None:
            magic.issue(db.session, found, "signin", mail="signin", language=_lang())
            db.session.commit()
        # The same answer whether or not we know the address.
        return render_template("portal/signin_sent.html", email=email)
    return render_template("portal/signin.html", form=form)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/portal/") and not target.startswith("//"):
        return target
    return url_for("portal.my_tickets")


@bp.route("/m/<token>", methods=["GET", "POST"])
@limiter.limit(_portal_limit, methods=["POST"])
def magic_link(token: str) -> str | tuple[str, int] | Response:
    """GET shows a button, POST signs in: mail scanners that prefetch links (GET) must not
    use up a single-use link."""
    try:
        row = (
            magic.consume(db.session, token)
            if request.method == "POST"
            else magic.peek(db.session, token)
        )
    except magic.LinkError as exc:
        db.session.rollback()
        return render_template("portal/link_error.html", message=str(exc), form=SignInForm()), 400
    if request.method == "GET":
        return render_template("portal/link_confirm.html", token=token, form=EmptyForm())
    if not EmptyForm().validate_on_submit():
        db.session.rollback()
        abort(400)
    customer = db.session.get(Customer, row.customer_id)
    if customer is None:
        db.session.rollback()
        abort(404)
    ticket = db.session.get(Ticket, row.ticket_id) if row.ticket_id else None
    _sign_in(customer)
    db.session.commit()
    if ticket is not None:
        return redirect(url_for("portal.ticket", number=ticket.number))
    return redirect(url_for("portal.my_tickets"))


@bp.post("/signout")
def signout() -> Response:
    if EmptyForm().validate_on_submit():
        logout_user()
    return redirect(url_for("portal.home"))


@bp.route("/account", methods=["GET", "POST"])
@customer_required
def account() -> str | tuple[str, int] | Response:
    me = cast(Customer, _customer())
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_password(db.session, me, form.password.data or "")
        except ServiceError as exc:
            form.password.errors = [str(exc)]
            return render_template("portal/account.html", form=form, has_password=False), 400
        db.session.commit()
        flash(_("Your password is set. You can now also sign in with it."), "success")
        return redirect(url_for("portal.my_tickets"))
    return render_template(
        "portal/account.html", form=form, has_password=accounts.has_password(db.session, me)
    )


# --- my tickets ----------------------------------------------------------------------------


@bp.get("/tickets")
@customer_required
def my_tickets() -> str:
    me = cast(Customer, _customer())
    participant = select(ticket_participants.c.ticket_id).where(
        ticket_participants.c.customer_id == me.id
    )
    rows = db.session.scalars(
        select(Ticket)
        .where(or_(Ticket.customer_id == me.id, Ticket.id.in_(participant)))
        .order_by(Ticket.updated_at.desc())
        .limit(200)
    ).all()
    return render_template("portal/tickets.html", tickets=rows)


def _my_ticket(number: int) -> Ticket:
    try:
        return access_ticket_by_number(db.session, _customer(), number)
    except NotFound:
        abort(404)


def _render_ticket(t: Ticket, form: ReplyForm | None = None, status: int = 200) -> Any:
    messages = db.session.scalars(
        select(Message)
        .where(
            Message.ticket_id == t.id,
            Message.internal.is_(False),
            Message.kind != MessageKind.SYSTEM,
        )
        .order_by(Message.id)
        .options(
            selectinload(Message.attachments),
            selectinload(Message.author_agent),
            selectinload(Message.author_customer),
        )
    ).all()
    return (
        render_template(
            "portal/ticket.html",
            ticket=t,
            messages=messages,
            form=form or ReplyForm(),
            status_form=EmptyForm(),
            custom_values=portal_fields.visible_values(db.session, t, _lang()),
        ),
        status,
    )


@bp.get("/tickets/<int:number>")
@customer_required
def ticket(number: int) -> Any:
    return _render_ticket(_my_ticket(number))


@bp.post("/tickets/<int:number>/reply")
@customer_required
@limiter.limit(_portal_limit)
def reply(number: int) -> Any:
    t = _my_ticket(number)
    me = cast(Customer, _customer())
    form = ReplyForm()
    if not form.validate_on_submit():
        return _render_ticket(t, form, 400)
    attachments, error = _read_uploads(form.attachments.data or [])
    if error:
        form.attachments.errors = [error, _("Your text is kept; attach the files again.")]
        return _render_ticket(t, form, 400)
    if not me.email:
        abort(404)
    try:
        receive(
            db.session,
            InboundMessage(
                channel_kind="portal",
                identity_kind="email",
                sender_address=me.email,
                text=form.body.data or "",
                ticket_id=t.id,
                attachments=attachments,
                language=_lang(),
            ),
        )
    except ServiceError as exc:
        db.session.rollback()
        form.body.errors = [str(exc)]
        return _render_ticket(_my_ticket(number), form, 400)
    db.session.commit()
    flash(_("Your reply was sent."), "success")
    return redirect(url_for("portal.ticket", number=t.number) + "#bottom")


@bp.post("/tickets/<int:number>/status")
@customer_required
def set_status(number: int) -> Response:
    t = _my_ticket(number)
    action = request.form.get("action")
    if EmptyForm().validate_on_submit() and action in ("close", "reopen"):
        target = TicketStatus.CLOSED if action == "close" else TicketStatus.OPEN
        tickets.set_status(db.session, t, target, _customer())
        db.session.commit()
        flash(
            _("Your ticket is closed.") if action == "close" else _("Your ticket is open again."),
            "success",
        )
    return redirect(url_for("portal.ticket", number=t.number))
