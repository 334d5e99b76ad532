"""The agents' workspace: the queue and the ticket page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.html import block_remote_images
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment
from helpdesk.models import (
    Agent,
    AuditEvent,
    Message,
    Organization,
    Priority,
    Tag,
    Team,
    Ticket,
    TicketStatus,
)
from helpdesk.services import custom_fields, mentions, outbox, sla, tickets
from helpdesk.services.access import access_ticket_by_number
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.services.queue import QueueFilter, queue_rows
from helpdesk.services.tags import set_tags
from helpdesk.web import audit_labels, custom_values
from helpdesk.web.filters import PRIORITY_LABELS, STATUS_LABELS
from helpdesk.web.forms import (
    AssignForm,
    NoteForm,
    PriorityForm,
    ReplyForm,
    RetryForm,
    StatusForm,
    TagsForm,
    TeamForm,
    choices,
)
from helpdesk.web.queue_rows import RowText

bp = Blueprint("agent", __name__, url_prefix="/agent")
# What a history line says ({{ audit_label(e.action, e.data) }} in agent/_audit.html).
bp.add_app_template_global(audit_labels.describe, "audit_label")
custom_values.register(bp)

F = TypeVar("F", bound=Callable[..., Any])


def agent_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not isinstance(current_user._get_current_object(), Agent):
            abort(404)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def me() -> Agent:
    return cast(Agent, current_user._get_current_object())


@bp.get("/")
@agent_required
def home() -> Response:
    return redirect(url_for("agent.queue"))


@bp.get("/queue")
@agent_required
def queue() -> str | Response:
    from helpdesk.services import views as view_services

    if not request.args:
        # Open the view this agent used last (remembered across devices).
        last = view_services.remembered(db.session, me())
        if last and last != QueueFilter().as_args():
            return redirect(url_for("agent.queue", **last))
    named = request.args.get("organization", "").strip()
    if named and not named.isdigit():
        # The filter box takes an organization's name: the queue's address keeps its id.
        from helpdesk.services.organizations import find_by_name

        args: dict[str, Any] = request.args.to_dict()
        found = find_by_name(db.session, named)
        if found is None:
            flash(_("No organization found for %(what)s.", what=named[:200]), "error")
            args.pop("organization")
        else:
            args["organization"] = str(found.id)
        return redirect(url_for("agent.queue", **args))
    flt = QueueFilter.from_args(request.args)
    page = queue_rows(
        db.session,
        flt,
        agent=me(),
        after=request.args.get("after") or None,
        limit=int(current_app.config["QUEUE_PAGE_SIZE"]),
    )
    text = RowText()
    if request.args.get("partial"):
        # The live refresh replaces the rows only: no sidebar, filters or top bar to fill.
        return render_template("agent/_queue_rows.html", page=page, flt=flt, text=text)
    saved = view_services.visible_views(db.session, me())
    lists = view_services.teams_and_agents(db.session, me())
    organization = (
        db.session.get(Organization, flt.organization_id) if flt.organization_id else None
    )
    return render_template(
        "agent/queue.html",
        organization=organization,
        page=page,
        flt=flt,
        text=text,
        saved_views=saved,
        current_saved=next((v.id for v in saved if v.args == flt.as_args()), None),
        views=text.views,
        sorts=text.sorts,
        teams=lists.teams,
        my_team_ids=lists.my_team_ids,
        agents=lists.agents,
        filter_fields=lists.fields,
        first_page=not request.args.get("after"),
    )


def _agents() -> list[Agent]:
    return list(
        db.session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name))
    )


def _ticket(number: int) -> Ticket:
    return access_ticket_by_number(db.session, me(), number)


def _forms(ticket: Ticket) -> dict[str, Any]:
    status_choices: list[tuple[str, object]] = [(s.value, STATUS_LABELS[s]) for s in TicketStatus]
    reply = ReplyForm(prefix="reply")
    reply.status.choices = choices(
        [("", _("(keep %(status)s)", status=STATUS_LABELS[ticket.status]))]
        + [c for c in status_choices if c[0] not in ("new", "closed")]
    )
    reply.version.data = str(ticket.version)
    assign = AssignForm(prefix="assign")
    assign.assignee.choices = choices(
        [("", _("Nobody")), *((str(a.id), a.name) for a in _agents())]
    )
    assign.assignee.data = str(ticket.assignee_id or "")
    team = TeamForm(prefix="team")
    team.team.choices = choices(
        [
            ("", _("No team")),
            *((str(t.id), t.name) for t in db.session.scalars(select(Team).order_by(Team.name))),
        ]
    )
    team.team.data = str(ticket.team_id or "")
    status = StatusForm(prefix="status")
    status.status.choices = choices(status_choices)
    status.status.data = ticket.status.value
    priority = PriorityForm(prefix="priority")
    priority.priority.choices = choices((str(int(p)), PRIORITY_LABELS[p]) for p in Priority)
    priority.priority.data = str(int(ticket.priority))
    tags = TagsForm(prefix="tags")
    tags.tags.data = ", ".join(t.name for t in ticket.tags)
    return {
        "reply_form": reply,
        "note_form": NoteForm(prefix="note"),
        "assign_form": assign,
        "team_form": team,
        "status_form": status,
        "priority_form": priority,
        "tags_form": tags,
        "retry_form": RetryForm(prefix="retry"),
    }


def _render_ticket(ticket: Ticket, status: int = 200, **overrides: Any) -> tuple[str, int]:
    messages = db.session.scalars(
        select(Message)
        .where(Message.ticket_id == ticket.id)
        .order_by(Message.id)
        .options(
            selectinload(Message.author_agent),
            selectinload(Message.author_customer),
            selectinload(Message.attachments),
        )
    ).all()
    show_images = request.args.get("images") == "1"
    bodies: dict[int, str] = {}
    blocked_any = False
    for m in messages:
        html = m.body_html or ""
        if not show_images:
            html, blocked = block_remote_images(html)
            blocked_any = blocked_any or blocked
        bodies[m.id] = html
    history = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.ticket_id == ticket.id)
        .order_by(AuditEvent.id.desc())
        .options(selectinload(AuditEvent.actor_agent), selectinload(AuditEvent.actor_customer))
        .limit(200)
    ).all()
    forms = _forms(ticket)
    if "custom" not in overrides:
        forms["custom"] = _fields_box(ticket)
    forms.update(overrides)
    other_tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.customer_id == ticket.customer_id, Ticket.id != ticket.id)
        .order_by(Ticket.id.desc())
        .limit(10)
    ).all()
    return (
        render_template(
            "agent/ticket.html",
            ticket=ticket,
            messages=messages,
            bodies=bodies,
            images_blocked=blocked_any,
            history=history,
            other_tickets=other_tickets,
            all_tags=db.session.scalars(select(Tag.name).order_by(Tag.name).limit(200)).all(),
            # Registered by the knowledge base (kb.init_app), if installed.
            kb_suggestions=_suggest_articles(ticket),
            sla=sla.summary(ticket),
            **forms,
        ),
        status,
    )


def _suggest_articles(ticket: Ticket) -> list[Any]:
    hook = current_app.extensions.get("helpdesk.suggest_articles")
    return list(hook(ticket)) if hook is not None else []


@bp.get("/tickets/<int:number>")
@agent_required
def ticket(number: int) -> tuple[str, int]:
    return _render_ticket(_ticket(number))


def _back(ticket: Ticket) -> Response:
    return redirect(url_for("agent.ticket", number=ticket.number) + "#bottom")


@bp.post("/tickets/<int:number>/reply")
@agent_required
def reply(number: int) -> Response | tuple[str, int]:
    t = _ticket(number)
    form = ReplyForm(prefix="reply")
    form.status.choices = choices([("", ""), *((s.value, s.value) for s in TicketStatus)])
    if not form.validate_on_submit():
        flash(_("Write a reply before sending."), "error")
        return _render_ticket(t, 400, reply_form=_keep_reply(t, form))
    uploads = [
        InboundAttachment(
            f.filename or "attachment", f.mimetype or "application/octet-stream", f.read()
        )
        for f in (form.attachments.data or [])
        if f and f.filename
    ]
    try:
        version = int(form.version.data) if form.version.data else None
    except ValueError:
        version = None
    try:
        tickets.reply_to_ticket(
            db.session,
            t,
            me(),
            form.body.data or "",
            attachments=uploads,
            status=TicketStatus(form.status.data) if form.status.data else None,
            # Also when resending after a conflict ("Send anyway"): the form then carries the
            # version the agent has just reviewed, so yet another reply is caught again.
            expected_version=version,
        )
    except Conflict as exc:
        db.session.rollback()
        t = _ticket(number)
        flash(str(exc), "warning")
        if uploads:  # a browser cannot be handed files back
            flash(_("Attach your files again before sending."), "warning")
        keep = _keep_reply(t, form)
        return _render_ticket(t, 409, reply_form=keep, conflict=True)
    except custom_fields.FieldErrors as exc:
        # Resolving with a required field empty: nothing is sent, the reply stays in the box
        # and the fields box opens on what is missing.
        db.session.rollback()
        t = _ticket(number)
        flash(str(exc), "error")
        if uploads:
            flash(_("Attach your files again before sending."), "warning")
        return _render_ticket(t, 400, reply_form=_keep_reply(t, form), custom=_fields_box(t, exc))
    db.session.commit()
    flash(_("Reply queued for delivery."), "success")
    return _back(t)


def _keep_reply(ticket: Ticket, posted: ReplyForm) -> ReplyForm:
    """A fresh reply form carrying what the agent typed: nothing typed is ever lost."""
    form = _forms(ticket)["reply_form"]
    form.body.data = posted.body.data
    form.status.data = posted.status.data
    return cast(ReplyForm, form)


def flash_mentions(found: mentions.Mentions) -> None:
    """Tell the author whom a note notified, and which @handles reached nobody."""
    if found.agents:
        flash(_("Notified: %(names)s.", names=", ".join(a.name for a in found.agents)), "info")
    for handle in found.unmatched:
        flash(
            _("No agent is called %(handle)s: nobody was notified for it.", handle=handle),
            "warning",
        )
    for handle, names in found.ambiguous.items():
        flash(
            _(
                "%(handle)s could be %(names)s: nobody was notified. Write more of the name.",
                handle=handle,
                names=", ".join(names),
            ),
            "warning",
        )


@bp.post("/tickets/<int:number>/note")
@agent_required
def note(number: int) -> Response | tuple[str, int]:
    t = _ticket(number)
    form = NoteForm(prefix="note")
    if not form.validate_on_submit():
        flash(_("Write a note before saving."), "error")
        return _render_ticket(t, 400)
    found = mentions.Mentions()
    tickets.add_note(db.session, t, me(), form.body.data or "", mentions=found)
    db.session.commit()
    flash(_("Note added."), "success")
    flash_mentions(found)
    return _back(t)


@bp.post("/tickets/<int:number>/assign")
@agent_required
def assign(number: int) -> Response:
    t = _ticket(number)
    raw = request.form.get("assign-assignee", "")
    if raw == "me":
        assignee: Agent | None = me()
    elif raw:
        assignee = db.session.get(Agent, int(raw)) if raw.isdigit() else None
        if assignee is None:
            raise ServiceError(_("Unknown agent."))
    else:
        assignee = None
    tickets.assign_ticket(db.session, t, assignee, me())
    db.session.commit()
    return _back(t)


@bp.post("/tickets/<int:number>/team")
@agent_required
def team(number: int) -> Response:
    t = _ticket(number)
    raw = request.form.get("team-team", "")
    team_row = None
    if raw:
        team_row = db.session.get(Team, int(raw)) if raw.isdigit() else None
        if team_row is None:
            raise ServiceError(_("Unknown team."))
    tickets.set_team(db.session, t, team_row, me())
    db.session.commit()
    return _back(t)


@bp.post("/tickets/<int:number>/status")
@agent_required
def status(number: int) -> Response | tuple[str, int]:
    t = _ticket(number)
    try:
        new = TicketStatus(request.form.get("status-status", ""))
    except ValueError:
        raise ServiceError(_("Unknown status.")) from None
    try:
        tickets.set_status(db.session, t, new, me())
    except custom_fields.FieldErrors as exc:
        db.session.rollback()
        t = _ticket(number)
        flash(str(exc), "error")
        return _render_ticket(t, 400, custom=_fields_box(t, exc))
    db.session.commit()
    return _back(t)


def _fields_box(
    ticket: Ticket,
    errors: custom_fields.FieldErrors | None = None,
    typed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    fields = custom_fields.fields_for(db.session, "ticket")
    return custom_values.box(fields, ticket.custom, typed=typed, errors=errors)


@bp.post("/tickets/<int:number>/fields")
@agent_required
def fields(number: int) -> Response | tuple[str, int]:
    """The sidebar's custom fields: bad values come back named, with what was typed."""
    t = _ticket(number)
    defined = custom_fields.fields_for(db.session, "ticket")
    errors = custom_values.save(db.session, t, defined, request.form, me())
    if errors is not None:
        t = _ticket(number)
        typed = custom_values.posted(defined, request.form)
        return _render_ticket(t, 400, custom=_fields_box(t, errors, typed))
    db.session.commit()
    flash(_("Fields saved."), "success")
    return redirect(url_for("agent.ticket", number=t.number))


@bp.post("/tickets/<int:number>/priority")
@agent_required
def priority(number: int) -> Response:
    t = _ticket(number)
    raw = request.form.get("priority-priority", "")
    if not raw.isdigit():
        raise ServiceError(_("Unknown priority."))
    tickets.set_priority(db.session, t, int(raw), me())
    db.session.commit()
    return _back(t)


@bp.post("/tickets/<int:number>/tags")
@agent_required
def tags(number: int) -> Response:
    t = _ticket(number)
    names = [n for n in request.form.get("tags-tags", "").split(",") if n.strip()]
    set_tags(db.session, t, names, me())
    db.session.commit()
    return _back(t)


@bp.post("/messages/<int:message_id>/retry")
@agent_required
def retry(message_id: int) -> Response:
    message = db.session.get(Message, message_id)
    if message is None:
        abort(404)
    t = message.ticket
    outbox.retry_now(db.session, message)
    db.session.commit()
    flash(_("Delivery will be tried again."), "info")
    return _back(t)
