"""Ticket search for agents: ``/agent/search`` (page) and ``/api/ui/tickets/search`` (JSON for
the signed-in agent's scripts; integrators use ``GET /api/v1/tickets?q=`` with a token)."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from helpdesk.db import HelpdeskSession
from helpdesk.extensions import db
from helpdesk.i18n import _l
from helpdesk.models import Agent
from helpdesk.services import search_index
from helpdesk.services.errors import ServiceError
from helpdesk.services.search import (
    PER_PAGE,
    RANK_WINDOW,
    SearchFilter,
    SearchResults,
    hit_row,
    search_tickets,
)
from helpdesk.web.agent import agent_required

bp = Blueprint("search", __name__)


def init_app(app: Flask) -> None:
    search_index.install(HelpdeskSession)
    app.register_blueprint(bp)


def _page() -> int:
    try:
        return max(int(request.args.get("page", 1)), 1)
    except ValueError:
        raise ServiceError(_l("Invalid value for %(name)s.", name="page")) from None


def _run() -> SearchResults:
    flt = SearchFilter.from_args(request.args)
    return search_tickets(db.session, request.args.get("q", ""), flt, page=_page())


@bp.get("/agent/search")
@agent_required
def agent_search() -> tuple[str, int]:
    query = request.args.get("q", "")
    results: SearchResults | None = None
    error: str | None = None
    flt = SearchFilter()
    try:
        flt = SearchFilter.from_args(request.args)
        if query.strip():
            results = _run()
    except ServiceError as exc:
        # Shown above the form, which keeps everything the agent typed.
        error = str(exc)
    agents = db.session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name))
    return (
        render_template(
            "agent/search.html",
            q=query,
            args=request.args,
            flt=flt,
            results=results,
            error=error,
            agents=list(agents),
            per_page=PER_PAGE,
            rank_window=RANK_WINDOW,
        ),
        400 if error else 200,
    )


@bp.get("/api/ui/tickets/search")
@agent_required
def api_search() -> Response:
    results = _run()
    return jsonify(
        {
            "query": results.query,
            "page": results.page,
            "next_page": results.page + 1 if results.has_next else None,
            "any_word": results.any_word,
            "narrowed": results.narrowed,
            "tickets": [hit_row(h) for h in results.hits],
        }
    )
