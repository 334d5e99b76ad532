"""Agents' in-app notifications: the list, marking read, and the unread badge in the top bar."""

from __future__ import annotations

from typing import Any

from flask import jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.models import Agent
from helpdesk.models.notifications import Notification
from helpdesk.services import mentions
from helpdesk.web.agent import agent_required, bp, me


@bp.app_context_processor
def _unread_notifications() -> dict[str, Any]:
    # Computed lazily: pages that never show the top bar pay nothing.
    def count() -> int:
        user = current_user._get_current_object() if current_user else None
        if not isinstance(user, Agent):
            return 0
        # Read with the My tasks badge in one statement (helpdesk/web/tasks.py).
        from helpdesk.web.tasks import nav_counts

        return nav_counts(user)[1]

    return {"unread_notifications": count}


@bp.get("/notifications")
@agent_required
def notifications() -> str:
    rows = db.session.scalars(
        select(Notification)
        .where(Notification.agent_id == me().id)
        .order_by(Notification.id.desc())
        .options(selectinload(Notification.ticket), selectinload(Notification.actor))
        .limit(100)
    ).all()
    return render_template("agent/notifications.html", notifications=rows)


@bp.get("/mentions/suggest")
@agent_required
def mentions_suggest() -> Response:
    """Agents for the note box's ``@`` autocomplete: ``?q=`` is what follows the ``@``."""
    found = mentions.suggest(db.session, request.args.get("q", "")[:100])
    return jsonify({"agents": [{"id": a.id, "name": a.name, "email": a.email} for a in found]})


@bp.post("/notifications/read")
@agent_required
def notifications_read() -> Response:
    raw = request.form.get("id", "")
    mentions.mark_read(db.session, me(), int(raw) if raw.isdigit() else None)
    db.session.commit()
    target = request.form.get("open")
    if target and target.isdigit():
        return redirect(url_for("agent.ticket", number=int(target)) + "#bottom")
    return redirect(url_for("agent.notifications"))
