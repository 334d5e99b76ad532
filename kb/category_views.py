"""Agents' category management at ``/agent/kb/categories``: create, rename and translate,
reorder, delete (only when empty, or moving the articles elsewhere). Routes live on the KB's
agent blueprint; :func:`kb.init_app` imports this module before registering it."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.extensions import db
from helpdesk.i18n import _, _l
from helpdesk.services.errors import Forbidden, NotFound, ServiceError
from helpdesk.web.agent import agent_required, me
from kb import categories
from kb.models import Category
from kb.views import agent_bp


class CategoryForm(FlaskForm):
    name = StringField(
        _l("Name (English)"), validators=[DataRequired(), Length(max=categories.MAX_NAME)]
    )
    name_bn = StringField(
        _l("Name (Bengali)"), validators=[Optional(), Length(max=categories.MAX_NAME)]
    )


class DeleteCategoryForm(FlaskForm):
    move_to = HiddenField()


def _category(category_id: int) -> Category:
    try:
        return categories.get_category(db.session, category_id)
    except NotFound:
        abort(404)


def _page(
    status: int = 200, *, new: CategoryForm | None = None, typed: dict[int, Any] | None = None
) -> tuple[str, int]:
    rows = categories.ordered(db.session)
    return (
        render_template(
            "kb/categories.html",
            categories=rows,
            counts=categories.counts(db.session),
            new=new or CategoryForm(formdata=None),
            typed=typed or {},
        ),
        status,
    )


def _form_errors(form: FlaskForm) -> str:
    return " ".join(
        f"{getattr(form, n).label.text}: {e}" for n, es in form.errors.items() for e in es
    )


@agent_bp.get("/categories")
@agent_required
def category_list() -> tuple[str, int]:
    return _page()


@agent_bp.post("/categories")
@agent_required
def category_create() -> Response | tuple[str, int]:
    form = CategoryForm()
    if not form.validate_on_submit():
        flash(_form_errors(form) or _("The form has expired. Please try again."), "error")
        return _page(400, new=form)
    try:
        category = categories.create_category(
            db.session, form.name.data or "", {"bn": form.name_bn.data}, actor=me()
        )
    except Forbidden:
        db.session.rollback()
        raise  # a 403 saying who may change categories
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(400, new=form)
    db.session.commit()
    flash(_("Category %(name)s created.", name=category.name), "success")
    return redirect(url_for("kb.category_list"))


@agent_bp.post("/categories/<int:category_id>")
@agent_required
def category_rename(category_id: int) -> Response | tuple[str, int]:
    category = _category(category_id)
    form = CategoryForm()
    typed = {category.id: {"name": form.name.data, "name_bn": form.name_bn.data}}
    if not form.validate_on_submit():
        flash(_form_errors(form) or _("The form has expired. Please try again."), "error")
        return _page(400, typed=typed)
    try:
        changed = categories.rename_category(
            db.session, category, form.name.data or "", {"bn": form.name_bn.data}, actor=me()
        )
    except Forbidden:
        db.session.rollback()
        raise  # a 403 saying who may change categories
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(400, typed=typed)
    db.session.commit()
    if changed:
        flash(_("Category %(name)s saved.", name=category.name), "success")
    return redirect(url_for("kb.category_list"))


@agent_bp.post("/categories/<int:category_id>/move")
@agent_required
def category_move(category_id: int) -> Response:
    category = _category(category_id)
    offset = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if not FlaskForm().validate_on_submit() or offset is None:
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("kb.category_list"))
    categories.move_category(db.session, category, offset, actor=me())  # Forbidden: a 403
    db.session.commit()
    return redirect(url_for("kb.category_list", _anchor=f"category-{category.id}"))


@agent_bp.post("/categories/<int:category_id>/delete")
@agent_required
def category_delete(category_id: int) -> Response | tuple[str, int]:
    category = _category(category_id)
    form = DeleteCategoryForm()
    if not form.validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("kb.category_list"))
    target: Category | None = None
    if form.move_to.data:
        try:
            target = categories.get_category(db.session, int(form.move_to.data))
        except (ValueError, NotFound):
            flash(_("Choose another category to move the articles to."), "error")
            return _page(400)
    name = category.name
    try:
        moved = categories.delete_category(db.session, category, move_to=target, actor=me())
    except Forbidden:
        db.session.rollback()
        raise  # a 403 saying who may change categories
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(400)
    db.session.commit()
    if moved and target is not None:
        flash(
            _(
                "Category %(name)s deleted; %(n)d articles moved to %(target)s.",
                name=name,
                n=moved,
                target=target.name,
            ),
            "success",
        )
    else:
        flash(_("Category %(name)s deleted.", name=name), "success")
    return redirect(url_for("kb.category_list"))
