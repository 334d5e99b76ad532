"""custom_fields: typed fields for tickets, customers and organizations (CRM, issue 15)

The definitions get their table; the values go in a ``custom`` JSON column on each object
(NULL for the rows that have none, so adding the column rewrites nothing). The expression
indexes of filterable ticket fields are made by the service when a field is defined.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import helpdesk.db

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_OBJECTS = ("ticket", "customer", "organization")
_TYPES = ("text", "long_text", "number", "date", "dropdown", "multi_select", "checkbox", "url")


def upgrade() -> None:
    def flag(name: str) -> sa.Column[bool]:
        return sa.Column(name, sa.Boolean(), nullable=False)

    op.create_table(
        "custom_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "object_type",
            sa.Enum(
                *_OBJECTS,
                name="field_object",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                *_TYPES, name="field_type", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("label_en", sa.String(length=120), nullable=False),
        sa.Column("label_bn", sa.String(length=120), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        flag("required_on_resolve"),
        flag("visible_to_customers"),
        flag("on_portal_form"),
        flag("on_prechat_form"),
        flag("required_on_forms"),
        sa.Column("position", sa.Integer(), nullable=False),
        flag("active"),
        sa.Column("created_at", helpdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", helpdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_fields")),
        sa.UniqueConstraint("object_type", "key", name=op.f("uq_custom_fields_object_type")),
    )
    # A plain ADD COLUMN on both databases (no table rebuild: tickets may be a million rows).
    for table in ("tickets", "customers", "organizations"):
        op.add_column(table, sa.Column("custom", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    for table in ("organizations", "customers", "tickets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("custom")
    op.drop_table("custom_fields")
