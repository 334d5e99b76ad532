"""CSV import of customers and organizations (the admin's upload page and ``helpdesk customers
import``): a spreadsheet's file read whatever its quirks, then each row created, updated or
skipped through the customer and organization verbs, in a savepoint of its own.

The file: UTF-8 with or without a byte order mark; the delimiter is sniffed (``,``, ``;`` as
Excel writes in many locales, or a tab); cells may hold quoted newlines; the header names the
columns in any case and order, and columns it does not know are ignored and reported.

- Customers: ``email`` (required; the key: a known address updates that customer), ``name``,
  ``language`` (``en``, ``bn``), ``organization`` (a name, in any case; **created when no
  organization has it**, as on the customer's page), ``notes``. An empty cell leaves what is
  stored; a new customer without an organization joins the one of their address's domain.
- Organizations: ``name`` (required; a known name, in any case, updates it), ``domains``
  (separated by ``;``, commas or spaces; added to the ones it has), ``notes``.

- Both: ``cf.<key>`` sets the custom field ``<key>`` of the customer or organization (the
  headers of the exports, so an export imports back), checked like the field's form
  (``custom_fields.clean_value``: option values, ``YYYY-MM-DD``, yes/no, a multi-select's
  values separated by commas); an empty cell leaves the value as it is. A ``cf.`` column of no
  active field is ignored and reported.

A row is all-or-nothing (its savepoint rolls back on an error, which is reported with the row's
number, the field and a translated message) and a bad row never stops the others. The caller
commits the good rows, or rolls everything back for a dry run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import Agent, Customer, CustomField, FieldObject, IdentityKind, Organization
from helpdesk.services import custom_fields, customers, organizations
from helpdesk.services.errors import Forbidden, ServiceError

Kind = Literal["customers", "organizations"]
KINDS: tuple[Kind, ...] = ("customers", "organizations")
COLUMNS: dict[Kind, tuple[str, ...]] = {
    "customers": ("email", "name", "language", "organization", "notes"),
    "organizations": ("name", "domains", "notes"),
}
REQUIRED: dict[Kind, str] = {"customers": "email", "organizations": "name"}
OBJECTS: dict[Kind, FieldObject] = {
    "customers": FieldObject.CUSTOMER,
    "organizations": FieldObject.ORGANIZATION,
}
# The custom fields' columns, as csv_export writes them.
CUSTOM_PREFIX = "cf."
MAX_ROWS = 50_000
# csv's own limit is 128 KiB a cell; notes are cut at 20,000 characters anyway.
_DELIMITERS = ",;\t"


class InvalidFile(ServiceError):
    """The file as a whole cannot be read (not UTF-8, no header, no required column)."""

    code = "invalid_file"


@dataclass
class ParsedFile:
    kind: Kind
    columns: list[str]  # the known columns found, in the file's order
    ignored_columns: list[str]  # the header's other columns, as written
    rows: list[tuple[int, dict[str, str]]]  # (row number as a spreadsheet shows it, cells)
    delimiter: str


@dataclass
class RowOutcome:
    row: int
    key: str  # the email or the organization's name
    outcome: Literal["created", "updated", "skipped", "error"]
    reason: str = ""
    field: str = ""


@dataclass
class ImportReport:
    kind: Kind
    outcomes: list[RowOutcome] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def of(self, outcome: str) -> list[RowOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    @property
    def counts(self) -> dict[str, int]:
        return {k: len(self.of(k)) for k in ("created", "updated", "skipped", "error")}


class _RowError(ServiceError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def _header_key(raw: str) -> str:
    return "_".join(raw.strip().lower().replace("-", " ").split())


def _is_custom(key: str) -> bool:
    return key.startswith(CUSTOM_PREFIX) and bool(
        custom_fields.KEY.match(key[len(CUSTOM_PREFIX) :])
    )


def _undefused(value: str) -> str:
    """A cell as written before an export (``csv_export.cell``) kept a spreadsheet from
    reading it as a formula."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@":
        return value[1:]
    return value


def parse_csv(data: bytes, kind: Kind, *, max_rows: int = MAX_ROWS) -> ParsedFile:
    """The rows of an uploaded file; ``InvalidFile`` when it cannot be read at all (or has
    more than ``max_rows`` rows)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidFile(
            _("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again.")
        ) from None
    if not text.strip():
        raise InvalidFile(_("The file is empty."))
    first_line = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(first_line, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = max(_DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        keys = [_header_key(h) for h in header]
        known = COLUMNS[kind]
        if REQUIRED[kind] not in keys:
            raise InvalidFile(
                _(
                    "The first line must name the columns, with at least “%(column)s”.",
                    column=REQUIRED[kind],
                )
            )
        # cf.<key> columns are kept here; import_rows ignores those of no active field.
        columns = [k for k in keys if k in known or _is_custom(k)]
        ignored = [
            h.strip()
            for h, k in zip(header, keys, strict=True)
            if k not in known and not _is_custom(k) and k
        ]
        rows: list[tuple[int, dict[str, str]]] = []
        for number, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise InvalidFile(_("At most %(count)s rows a file.", count=max_rows))
            cells: dict[str, str] = {}
            for key, value in zip(keys, record, strict=False):
                if (key in known or _is_custom(key)) and key not in cells:
                    cells[key] = _undefused(value.strip())
            rows.append((number, cells))
    except csv.Error as exc:
        raise InvalidFile(
            _("The file is not a readable CSV file: %(error)s", error=str(exc))
        ) from None
    return ParsedFile(kind, columns, ignored, rows, delimiter)


def _languages() -> tuple[str, ...]:
    if has_app_context():
        return tuple(current_app.config["LANGUAGES"])
    return ("en", "bn")


def import_rows(
    session: Session,
    parsed: ParsedFile,
    actor: Agent | None,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create, update or skip each row in a savepoint of its own; the caller commits (or rolls
    back for a dry run). ``actor`` None is the command line's import (an admin's run)."""
    if actor is not None and not actor.is_admin:
        raise Forbidden(_("Only admins may import customers and organizations."))
    report = ImportReport(parsed.kind, ignored_columns=list(parsed.ignored_columns))
    fields = {
        f"{CUSTOM_PREFIX}{f.key}": f
        for f in custom_fields.fields_for(session, OBJECTS[parsed.kind])
    }
    report.ignored_columns += [c for c in parsed.columns if _is_custom(c) and c not in fields]
    seen: dict[str, int] = {}
    one = _customer_row if parsed.kind == "customers" else _organization_row
    for number, cells in parsed.rows:
        key = cells.get(REQUIRED[parsed.kind], "")
        try:
            with session.begin_nested():
                custom = _Custom(_custom_values(cells, fields), list(fields.values()), actor)
                report.outcomes.append(one(session, number, cells, seen, custom))
        except _RowError as exc:
            report.outcomes.append(RowOutcome(number, key, "error", str(exc), exc.field))
        except ServiceError as exc:
            report.outcomes.append(RowOutcome(number, key, "error", str(exc), ""))
        if progress is not None:
            progress(1)
    return report


def _custom_values(cells: dict[str, str], fields: dict[str, CustomField]) -> dict[str, object]:
    """The row's custom values by key, cleaned (an empty cell: not given); a bad one fails the
    row, naming the column and the field in the reader's language."""
    raw = {
        column.removeprefix(CUSTOM_PREFIX): value
        for column, value in cells.items()
        if column in fields and value
    }
    if not raw:
        return {}
    try:
        return custom_fields.clean_values(list(fields.values()), raw)
    except custom_fields.FieldErrors as exc:
        first = next(iter(exc.fields))
        raise _RowError(f"{CUSTOM_PREFIX}{first}", str(exc)) from None


@dataclass
class _Custom:
    """A row's cleaned custom values, set on the record the row created or updated."""

    values: dict[str, object]
    fields: list[CustomField]
    actor: Agent | None

    def set_on(self, session: Session, record: Customer | Organization) -> list[str]:
        """The columns that changed (``cf.<key>``)."""
        if not self.values:
            return []
        changes = custom_fields.set_values(
            session, record, self.values, self.actor, fields=self.fields
        )
        return sorted(CUSTOM_PREFIX + name.removeprefix("custom.") for name in changes)


def _customer_row(
    session: Session, number: int, cells: dict[str, str], seen: dict[str, int], custom: _Custom
) -> RowOutcome:
    actor = custom.actor
    raw = cells.get("email", "")
    if not raw:
        raise _RowError("email", _("An email address is required."))
    try:
        email = customers.normalize_email(raw)
    except ServiceError as exc:
        raise _RowError("email", str(exc)) from None
    if email in seen:
        return RowOutcome(
            number,
            email,
            "skipped",
            _("The same email address as row %(row)s.", row=seen[email]),
        )
    seen[email] = number
    language = cells.get("language", "").lower()
    if language and language not in _languages():
        raise _RowError(
            "language",
            _(
                "Unknown language %(language)s (use one of: %(languages)s).",
                language=cells["language"],
                languages=", ".join(_languages()),
            ),
        )
    name = cells.get("name") or None
    notes = cells.get("notes") or None
    org = cells.get("organization") or None
    if org is not None and not organizations.clean_name(org):
        org = None
    existing = customers.find_by_identity(session, IdentityKind.EMAIL, email)
    try:
        if existing is None:
            created = customers.create_customer(
                session,
                email,
                name=name,
                language=language or None,
                organization=org,
                notes=notes,
                actor=actor,
            )
            custom.set_on(session, created)
            return RowOutcome(number, email, "created")
        changed = _changes(existing, name, notes, language, org)
        if changed:
            customers.update_customer(
                session,
                existing,
                name=name,
                notes=notes,
                language=language or None,
                organization=org,
                actor=actor,
            )
    except ServiceError as exc:
        raise _RowError("organization" if org else "email", str(exc)) from None
    changed += custom.set_on(session, existing)
    if not changed:
        return RowOutcome(number, email, "skipped", _("Nothing to change."))
    return RowOutcome(number, email, "updated", ", ".join(changed))


def _changes(
    c: Customer, name: str | None, notes: str | None, language: str, org: str | None
) -> list[str]:
    changed = []
    if name is not None and customers.clip_name(name) != c.name:
        changed.append("name")
    if language and language != c.language:
        changed.append("language")
    if org is not None and (
        c.organization is None
        or c.organization.name.lower() != organizations.clean_name(org).lower()
    ):
        changed.append("organization")
    if notes is not None and notes[:20_000] != c.notes:
        changed.append("notes")
    return changed


def _domains(raw: str) -> list[str]:
    try:
        return organizations.parse_domains(raw.replace(";", " "))
    except ServiceError as exc:
        raise _RowError("domains", str(exc)) from None


def _organization_row(
    session: Session, number: int, cells: dict[str, str], seen: dict[str, int], custom: _Custom
) -> RowOutcome:
    actor = custom.actor
    name = organizations.clean_name(cells.get("name"))
    if not name:
        raise _RowError("name", _("An organization needs a name."))
    folded = name.lower()
    if folded in seen:
        return RowOutcome(
            number, name, "skipped", _("The same name as row %(row)s.", row=seen[folded])
        )
    seen[folded] = number
    domains = _domains(cells.get("domains", ""))
    notes = cells.get("notes") or None
    existing = organizations.find_by_name(session, name)
    try:
        if existing is None:
            created = organizations.create_organization(
                session, name, domains=domains, notes=notes or "", actor=actor
            )
            custom.set_on(session, created)
            return RowOutcome(number, name, "created")
        new_domains = [d for d in domains if d not in existing.domain_names]
        changed = organizations.update_organization(
            session,
            existing,
            notes=notes,
            domains=existing.domain_names + new_domains if new_domains else None,
            actor=actor,
        )
    except ServiceError as exc:
        raise _RowError("domains" if domains else "name", str(exc)) from None
    names = [*sorted(changed), *custom.set_on(session, existing)]
    if not names:
        return RowOutcome(number, existing.name, "skipped", _("Nothing to change."))
    return RowOutcome(number, existing.name, "updated", ", ".join(names))


def preview_rows(parsed: ParsedFile, limit: int = 20) -> Iterable[tuple[int, dict[str, str]]]:
    return parsed.rows[:limit]
