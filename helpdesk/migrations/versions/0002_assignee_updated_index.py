"""Index for the assignee filter across all statuses (measured by bench/queue.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# Plain CREATE INDEX (not batch mode): it needs no table copy on SQLite, which matters at a
# million tickets.
def upgrade() -> None:
    op.create_index("ix_tickets_assignee_updated", "tickets", ["assignee_id", "updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_assignee_updated", table_name="tickets")
