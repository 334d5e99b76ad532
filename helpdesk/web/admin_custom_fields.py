"""Admin pages for custom fields: one section per kind of record (tickets, customers,
organizations) listing its fields in order with Move up / Move down, a form to define or edit a
field (the kind, key and type are chosen once, at creation), archive / restore, and delete with
a confirmation page saying how many records hold a value. Routes on the ``admin`` blueprint
(admins only: everyone else gets a 404); the rules are in helpdesk.services.custom_fields,
which the API's ``/api/v1/custom-fields`` calls too.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import LazyString, get_locale
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.extensions import db
from helpdesk.i18n import _, _l, _n
from helpdesk.models import Agent, CustomField, FieldObject, FieldType
from helpdesk.services import custom_fields as cf
from helpdesk.services.errors import ServiceError
from helpdesk.web.admin import admin_required, bp
from helpdesk.web.forms import choices

OBJECT_TITLES: dict[FieldObject, LazyString] = {
    FieldObject.TICKET: _l("Ticket fields"),
    FieldObject.CUSTOMER: _l("Customer fields"),
    FieldObject.ORGANIZATION: _l("Organization fields"),
}
TYPE_NAMES: dict[FieldType, LazyString] = {
    FieldType.TEXT: _l("Text"),
    FieldType.LONG_TEXT: _l("Long text"),
    FieldType.NUMBER: _l("Number"),
    FieldType.DATE: _l("Date"),
    FieldType.DROPDOWN: _l("Dropdown"),
    FieldType.MULTI_SELECT: _l("Multi-select"),
    FieldType.CHECKBOX: _l("Checkbox"),
    FieldType.URL: _l("URL"),
}
# The flags as the list shows them (short) and the form explains them.
FLAG_NAMES: dict[str, LazyString] = {
    "required_on_resolve": _l("Required on resolve"),
    "visible_to_customers": _l("Visible to customers"),
    "on_portal_form": _l("On the portal's form"),
    "on_prechat_form": _l("On the pre-chat form"),
    "required_on_forms": _l("Required on the forms"),
}
FLAGS = tuple(FLAG_NAMES)
# A service error's code -> the form field it is about (others are shown above the form).
_FIELD_OF_CODE = {
    "invalid_key": "key",
    "key_taken": "key",
    "invalid_type": "type",
    "label_required": "label_en",
    "invalid_options": "options",
    "no_options": "options",
    "not_on_forms": "on_portal_form",
    "not_visible": "visible_to_customers",
}


class FieldForm(FlaskForm):
    label_en = StringField(
        _l("Label (English)"), validators=[DataRequired(), Length(max=cf.MAX_LABEL)]
    )
    label_bn = StringField(
        _l("Label (Bengali)"),
        validators=[Optional(), Length(max=cf.MAX_LABEL)],
        description=_l("Bengali readers see the English label while this is empty."),
    )
    options = TextAreaField(
        _l("Options"),
        validators=[Optional(), Length(max=100_000)],
        description=_l(
            "Dropdown and multi-select fields: one option per line, written value | English |"
            " Bengali (for example: gold | Gold | গোল্ড). The value is what is stored, exported"
            " and used in the API; removing an option leaves its value on the records that"
            " have it."
        ),
    )
    required_on_resolve = BooleanField(
        FLAG_NAMES["required_on_resolve"],
        description=_l(
            "Ticket fields: an agent cannot resolve or close a ticket while this field is empty."
        ),
    )
    visible_to_customers = BooleanField(
        FLAG_NAMES["visible_to_customers"],
        description=_l("Customers may see it on the portal. Otherwise only agents see it."),
    )
    on_portal_form = BooleanField(
        _l("Ask on the portal's contact form"),
        description=_l("Ticket and customer fields that are visible to customers."),
    )
    on_prechat_form = BooleanField(
        _l("Ask on the chat's pre-chat form"),
        description=_l("Ticket and customer fields that are visible to customers."),
    )
    required_on_forms = BooleanField(
        FLAG_NAMES["required_on_forms"],
        description=_l("The customer must answer it on the forms that ask it."),
    )


class NewFieldForm(FieldForm):
    object_type = SelectField(
        _l("Records"),
        choices=choices((o.value, OBJECT_TITLES[o]) for o in FieldObject),
        validators=[DataRequired()],
    )
    key = StringField(
        _l("Key"),
        validators=[DataRequired(), Length(max=40)],
        description=_l(
            "The field's name in the API, exports and filters: lower-case letters, digits and"
            " underscores, starting with a letter (for example contract_plan). It cannot be"
            " changed later."
        ),
    )
    type = SelectField(
        _l("Type"),
        choices=choices((t.value, TYPE_NAMES[t]) for t in FieldType),
        validators=[DataRequired()],
        description=_l("It cannot be changed later."),
    )


class ConfirmForm(FlaskForm):
    pass


def _me() -> Agent:
    user: Agent = current_user._get_current_object()
    return user


def _field(field_id: int) -> CustomField:
    field = db.session.get(CustomField, field_id)
    if field is None:
        raise NotFound()
    return field


def _label(field: CustomField) -> str:
    """The field's label in the reader's language (flash messages)."""
    locale = get_locale()
    return field.label(locale.language if locale is not None else "en")


def _options_text(field: CustomField) -> str:
    """The options as the form's textarea writes them: ``value | English | Bengali``."""
    return "\n".join(
        " | ".join([o["value"], o.get("en") or o["value"], *([o["bn"]] if o.get("bn") else [])])
        for o in field.options or []
    )


def _flags(form: FieldForm) -> dict[str, bool]:
    return {name: bool(getattr(form, name).data) for name in FLAGS}


def _show_error(form: FieldForm, exc: ServiceError) -> None:
    name = _FIELD_OF_CODE.get(exc.code)
    target = getattr(form, name, None) if name else None
    if target is None:
        form.form_errors.append(str(exc))
    else:
        target.errors = [*target.errors, str(exc)]


def _holders(field: CustomField) -> int:
    """How many records hold a value of the field (what a delete removes)."""
    table = cf.OBJECT_MODELS[field.object_type].__table__
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(table)
            .where(cf.has_value(db.session, table.c.custom, field.key))
        )
        or 0
    )


def _form_page(form: FieldForm, field: CustomField | None, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "admin/custom_field_form.html",
        form=form,
        field=field,
        type_names=TYPE_NAMES,
        object_titles=OBJECT_TITLES,
    )
    return page, status


# --- views ---------------------------------------------------------------------------------------


@bp.get("/custom-fields")
@admin_required
def custom_fields() -> str:
    fields = cf.all_fields(db.session, archived=True)
    sections = [
        (o, OBJECT_TITLES[o], [f for f in fields if f.object_type == o]) for o in FieldObject
    ]
    for _o, _title, rows in sections:
        rows.sort(key=lambda f: (f.position, f.id))
    return render_template(
        "admin/custom_fields.html",
        sections=sections,
        type_names=TYPE_NAMES,
        flag_names=FLAG_NAMES,
        flags=FLAGS,
    )


@bp.route("/custom-fields/new", methods=["GET", "POST"])
@admin_required
def custom_field_new() -> tuple[str, int] | Response:
    form = NewFieldForm()
    if request.method == "GET" and request.args.get("object") in {o.value for o in FieldObject}:
        form.object_type.data = request.args["object"]
    if request.method != "POST":
        return _form_page(form, None)
    if not form.validate_on_submit():
        return _form_page(form, None, 400)
    try:
        field = cf.define_field(
            db.session,
            _me(),
            object_type=form.object_type.data or "",
            key=form.key.data or "",
            type=form.type.data or "",
            label_en=form.label_en.data or "",
            label_bn=form.label_bn.data or "",
            options=form.options.data or "",
            **_flags(form),
        )
    except ServiceError as exc:
        db.session.rollback()
        _show_error(form, exc)
        return _form_page(form, None, 400)
    db.session.commit()
    flash(_("Field %(label)s created.", label=_label(field)), "success")
    return redirect(url_for("admin.custom_fields", _anchor=f"fields-{field.object_type.value}"))


@bp.route("/custom-fields/<int:field_id>", methods=["GET", "POST"])
@admin_required
def custom_field_edit(field_id: int) -> tuple[str, int] | Response:
    field = _field(field_id)
    if request.method != "POST":
        form = FieldForm(
            data={
                "label_en": field.label_en,
                "label_bn": field.label_bn,
                "options": _options_text(field),
                **{name: getattr(field, name) for name in FLAGS},
            }
        )
        return _form_page(form, field)
    form = FieldForm()
    if not form.validate_on_submit():
        return _form_page(form, field, 400)
    changes: dict[str, Any] = {"options": form.options.data or ""} if field.type.has_options else {}
    try:
        cf.update_field(
            db.session,
            field,
            _me(),
            label_en=form.label_en.data or "",
            label_bn=form.label_bn.data or "",
            **_flags(form),
            **changes,
        )
    except ServiceError as exc:
        db.session.rollback()
        _show_error(form, exc)
        return _form_page(form, _field(field_id), 400)
    db.session.commit()
    flash(_("Field %(label)s saved.", label=_label(field)), "success")
    return redirect(url_for("admin.custom_fields", _anchor=f"fields-{field.object_type.value}"))


@bp.post("/custom-fields/<int:field_id>/move")
@admin_required
def custom_field_move(field_id: int) -> Response:
    field = _field(field_id)
    cf.move_field(db.session, field, _me(), -1 if request.form.get("step") == "up" else 1)
    db.session.commit()
    return redirect(url_for("admin.custom_fields", _anchor=f"field-{field.id}"))


@bp.post("/custom-fields/<int:field_id>/active")
@admin_required
def custom_field_active(field_id: int) -> Response:
    field = _field(field_id)
    active = request.form.get("active") == "1"
    try:
        cf.update_field(db.session, field, _me(), active=active)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        if active:
            flash(_("Field %(label)s restored.", label=_label(field)), "success")
        else:
            flash(
                _(
                    "Field %(label)s archived: hidden everywhere, its values kept.",
                    label=_label(field),
                ),
                "success",
            )
    return redirect(url_for("admin.custom_fields", _anchor=f"field-{field.id}"))


@bp.route("/custom-fields/<int:field_id>/delete", methods=["GET", "POST"])
@admin_required
def custom_field_delete(field_id: int) -> str | Response:
    field = _field(field_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        label, section = _label(field), field.object_type.value
        removed = cf.delete_field(db.session, field, _me())
        db.session.commit()
        flash(
            _n(
                "Field %(label)s deleted with %(num)d value.",
                "Field %(label)s deleted with %(num)d values.",
                removed,
                label=label,
            ),
            "success",
        )
        return redirect(url_for("admin.custom_fields", _anchor=f"fields-{section}"))
    return render_template(
        "admin/custom_field_delete.html", field=field, form=form, holders=_holders(field)
    )
