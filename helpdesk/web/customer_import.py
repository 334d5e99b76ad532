"""The admins' CSV import of customers and organizations: upload, a preview (the first rows and
what each row would do, every row checked in a transaction that is rolled back), then the
import of the same file (kept on the server between the two, see ``_hold``)."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import abort, current_app, render_template, request
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.services import customer_import
from helpdesk.services.errors import ServiceError
from helpdesk.web.agent import agent_required, bp, me

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
PREVIEW_ROWS = 20
# A row costs 2-3 ms (its lookups, savepoint and events) and the page runs the file twice
# (preview, import) in a request: bigger files go through `helpdesk customers import`.
MAX_ROWS = 10_000


def _admin() -> None:
    if not me().is_admin:
        abort(403)


def _kind() -> customer_import.Kind:
    raw = request.values.get("kind", "customers")
    return "organizations" if raw == "organizations" else "customers"


def _page(status: int = 200, **context: object) -> tuple[str, int]:
    return (
        render_template(
            "agent/customer_import.html",
            kind=context.pop("kind", _kind()),
            max_mb=_max_bytes() // (1024 * 1024),
            columns=customer_import.COLUMNS,
            **context,
        ),
        status,
    )


def _max_bytes() -> int:
    return int(current_app.config.get("CUSTOMER_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


@bp.get("/customers/import")
@agent_required
def customer_import_form() -> tuple[str, int]:
    _admin()
    return _page()


@bp.post("/customers/import")
@agent_required
def customer_import_post() -> tuple[str, int] | Response:
    _admin()
    kind = _kind()
    cap = _max_bytes()
    upload = request.files.get("file")
    token = request.form.get("upload", "")
    if upload is not None and upload.filename:
        data = upload.stream.read(cap + 1)
        token = ""
    else:
        data = _held(token)
    if not data:
        return _page(400, kind=kind, error=_("Choose a CSV file to import."))
    if len(data) > cap:
        return _page(
            413, kind=kind, error=_("The file is larger than %(size)s MB.", size=cap // 2**20)
        )
    try:
        parsed = customer_import.parse_csv(data, kind, max_rows=MAX_ROWS)
    except ServiceError as exc:
        return _page(400, kind=kind, error=str(exc))
    confirmed = request.form.get("action") == "import"
    report = customer_import.import_rows(db.session, parsed, me())
    if confirmed:
        db.session.commit()
        _forget(token)
    else:
        db.session.rollback()  # the preview: every row checked, nothing written
        token = token or _hold(data)
    return _page(
        kind=kind,
        parsed=parsed,
        preview=parsed.rows[:PREVIEW_ROWS],
        report=report,
        done=confirmed,
        upload=token,
    )


# The previewed file waits on the server for the Import button (not in the page: a form field
# over Flask's MAX_FORM_MEMORY_SIZE, 500 kB, would be refused before the view runs), under a
# random name bound to the admin; imported, it is deleted, and one an hour old on the next upload.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
KEEP_SECONDS = 3600


def _held_path(token: str) -> Path:
    return Path(current_app.instance_path) / "csv-imports" / f"{me().id}-{token}.csv"


def _hold(data: bytes) -> str:
    folder = Path(current_app.instance_path) / "csv-imports"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("*.csv"):
        if now - old.stat().st_mtime > KEEP_SECONDS:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(24)
    _held_path(token).write_bytes(data)
    return token


def _held(token: str) -> bytes:
    if not _TOKEN.match(token or ""):
        return b""
    try:
        return _held_path(token).read_bytes()
    except OSError:
        return b""


def _forget(token: str) -> None:
    if _TOKEN.match(token or ""):
        _held_path(token).unlink(missing_ok=True)
