"""satisfaction_ratings: one survey per resolution of a ticket (issue 16)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import helpdesk.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_TIME = helpdesk.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "satisfaction_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("scale", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("rated_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_satisfaction_ratings_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_satisfaction_ratings_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_satisfaction_ratings_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_satisfaction_ratings")),
        sa.UniqueConstraint("ticket_id", "round", name=op.f("uq_satisfaction_ratings_ticket_id")),
    )
    op.create_index("ix_satisfaction_ratings_rated_at", "satisfaction_ratings", ["rated_at", "id"])
    op.create_index(
        "ix_satisfaction_ratings_agent_rated", "satisfaction_ratings", ["agent_id", "rated_at"]
    )
    op.create_index("ix_satisfaction_ratings_customer_id", "satisfaction_ratings", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_satisfaction_ratings_customer_id", table_name="satisfaction_ratings")
    op.drop_index("ix_satisfaction_ratings_agent_rated", table_name="satisfaction_ratings")
    op.drop_index("ix_satisfaction_ratings_rated_at", table_name="satisfaction_ratings")
    op.drop_table("satisfaction_ratings")
