"""Saved queue views, the remembered last view, and live view counts."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import flash, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.services import views as view_services
from helpdesk.services.queue import QueueFilter
from helpdesk.web.agent import agent_required, bp, me


@bp.get("/queue/counts")
@agent_required
def queue_counts() -> Response:
    return jsonify(view_services.view_counts(db.session, me()))


@bp.post("/queue/remember")
@agent_required
def queue_remember() -> Response:
    """The queue page posts its arguments here so the next visit opens the same view."""
    args = dict(parse_qsl(request.form.get("args", "")))
    args.pop("after", None)
    args.pop("partial", None)
    flt = QueueFilter.from_args(args)
    view_services.remember(db.session, me(), flt.as_args())
    db.session.commit()
    return jsonify({"ok": True})


@bp.get("/queue/last")
@agent_required
def queue_last() -> Response:
    return redirect(url_for("agent.queue", **view_services.remembered(db.session, me())))


@bp.post("/views")
@agent_required
def view_save() -> Response:
    args = dict(parse_qsl(request.form.get("args", "")))
    args.pop("after", None)
    team = request.form.get("team", "")
    view = view_services.save_view(
        db.session,
        me(),
        request.form.get("name", ""),
        args,
        team_id=int(team) if team.isdigit() else None,
    )
    db.session.commit()
    flash(_("View “%(name)s” saved.", name=view.name), "success")
    return redirect(url_for("agent.queue", **view.args))


@bp.post("/views/<int:view_id>/delete")
@agent_required
def view_delete(view_id: int) -> Response:
    view_services.delete_view(db.session, me(), view_id)
    db.session.commit()
    flash(_("View deleted."), "success")
    return redirect(url_for("agent.queue"))
