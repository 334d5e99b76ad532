"""CSV downloads for agents: the customers, the organizations and the queue's tickets with the
queue's current view, filters and order (``services.csv_export``), streamed as they are read."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, request, stream_with_context

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.services import csv_export
from helpdesk.services.queue import QueueFilter
from helpdesk.web.agent import agent_required, bp, me


def _download(chunks: Iterator[str], name: str) -> Response:
    filename = f"{name}-{utcnow().date().isoformat()}.csv"
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            # A proxy that buffers would hold a million rows before the first byte.
            "X-Accel-Buffering": "no",
        },
    )


@bp.get("/customers/export.csv")
@agent_required
def customers_export() -> Response:
    return _download(csv_export.customers_csv(db.session), "customers")


@bp.get("/organizations/export.csv")
@agent_required
def organizations_export() -> Response:
    return _download(csv_export.organizations_csv(db.session), "organizations")


@bp.get("/queue/export.csv")
@agent_required
def queue_export() -> Response:
    flt = QueueFilter.from_args(request.args)  # a bad filter is a 400 before any row
    return _download(csv_export.tickets_csv(db.session, flt, me()), "tickets")
