"""quarantined mail gets a reason: automatic mail that continues no conversation is held there

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 13:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantined_mail", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason", sa.String(length=16), server_default="error", nullable=False)
        )
        batch_op.create_index("ix_quarantined_mail_raw_sha256", ["raw_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantined_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantined_mail_raw_sha256")
        batch_op.drop_column("reason")
