"""tickets.external_id (ticket import, REST API v1)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column and a separate unique index: SQLite adds both without rewriting the
    # tickets table (a batch operation would copy a million rows).
    op.add_column("tickets", sa.Column("external_id", sa.String(length=255), nullable=True))
    op.create_index("ix_tickets_external_id", "tickets", ["external_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_tickets_external_id", table_name="tickets")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("external_id")
