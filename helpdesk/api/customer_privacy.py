"""``GET /api/v1/customers/<id>/export`` (everything about one customer: a zip of
``customer.json`` and the attachments) and ``POST /api/v1/customers/<id>/erase`` (``{"confirm":
true}``): a customer's data-protection requests, admin tokens of admins only, audited
(``services.customer_privacy``; the pages' "Data protection" box does the same)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import validate

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import errors_doc
from helpdesk.api.customers import _customer, blp
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.models import TokenScope
from helpdesk.services import customer_privacy


class EraseIn(ma.Schema):
    confirm = ma.fields.Boolean(
        required=True,
        validate=validate.Equal(True),
        metadata={"description": "Must be `true`: erasing cannot be undone."},
    )


class ErasedOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    erased = ma.fields.Boolean(required=True)
    tickets = ma.fields.Integer(required=True, metadata={"description": "Tickets kept, redacted"})
    messages = ma.fields.Integer(required=True, metadata={"description": "Messages redacted"})
    attachments = ma.fields.Integer(required=True, metadata={"description": "Attachments deleted"})
    identities = ma.fields.Integer(required=True, metadata={"description": "Identities removed"})


@blp.route("/<int:customer_id>/export", methods=["GET"])
@requires_scope(TokenScope.ADMIN)
@blp.doc(
    responses={
        "200": {
            "description": "A zip: `customer.json` (the record, its identities, its tickets with "
            "every message) and `attachments/<message id>/<id>-<file name>`",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
)
@errors_doc(blp, 401, 403, 404, 429)
def export_customer(customer_id: int) -> Response:
    """Everything stored about this customer, for their data-protection request (admin)."""
    customer = _customer(customer_id)
    data = customer_privacy.export_customer(db.session, customer, me())
    db.session.commit()  # the audit line
    name = f"customer-{customer_id}-{utcnow().date().isoformat()}.zip"
    return Response(
        data,
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@blp.route("/<int:customer_id>/erase", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(EraseIn)
@blp.response(200, ErasedOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
@idempotent
def erase_customer(data: dict[str, Any], customer_id: int) -> Any:
    """Erase this customer (admin): messages on their tickets and messages they wrote are
    redacted, their attachments deleted, identities, portal logins and chat sessions removed;
    the tickets stay with an anonymous record. The audit log and the `customer.erased` event
    keep who did it. Cannot be undone."""
    customer = _customer(customer_id)
    counts = customer_privacy.erase_customer(db.session, customer, me())
    return commit_response({"id": customer_id, "erased": True, **counts}, 200)
