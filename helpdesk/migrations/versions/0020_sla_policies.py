"""sla_policies: targets per priority on a calendar; each ticket's SLA state (issue 16)

The policies' table, and on tickets: the policy that applies, each target's due time, the
earliest (the queue's order, with its index), the next timer (the worker's, a partial index:
only tickets with one are in it) and the clocks (JSON). All NULL for existing tickets: an SLA
applies from the next change of a ticket on.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import helpdesk.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_TIME = helpdesk.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("warning_minutes", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_sla_policies_calendar_id_calendars"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policies_name")),
    )
    # Plain ADD COLUMNs: no table rebuild at a million tickets.
    for name in (
        "first_response_due_at",
        "next_response_due_at",
        "resolution_due_at",
        "sla_due_at",
        "sla_timer_at",
    ):
        op.add_column("tickets", sa.Column(name, _TIME, nullable=True))
    op.add_column("tickets", sa.Column("sla", sa.JSON(none_as_null=True), nullable=True))
    # No foreign key: SQLite cannot add one without rebuilding a million-row table; deleting a
    # policy clears its tickets' id (services/sla.py).
    op.add_column("tickets", sa.Column("sla_policy_id", sa.Integer(), nullable=True))
    op.create_index(
        "ix_tickets_active_sla_due", "tickets", ["active", "sla_due_at", "id"], unique=False
    )
    op.create_index(
        "ix_tickets_sla_timer_at",
        "tickets",
        ["sla_timer_at"],
        unique=False,
        sqlite_where=sa.text("sla_timer_at IS NOT NULL"),
        postgresql_where=sa.text("sla_timer_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_sla_timer_at", table_name="tickets")
    op.drop_index("ix_tickets_active_sla_due", table_name="tickets")
    for name in (
        "sla_policy_id",
        "sla",
        "sla_timer_at",
        "sla_due_at",
        "resolution_due_at",
        "next_response_due_at",
        "first_response_due_at",
    ):
        op.drop_column("tickets", name)
    op.drop_table("sla_policies")
