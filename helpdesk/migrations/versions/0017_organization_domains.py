"""organization_domains: many email domains per organization (CRM, issue 15)

The single ``organizations.domain`` column's values move into the new table (lower-cased,
one organization per domain: the first by id keeps a domain two organizations shared), then the
column goes.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import helpdesk.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("created_at", helpdesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_domains_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_domains")),
        sa.UniqueConstraint("domain", name=op.f("uq_organization_domains_domain")),
    )
    op.create_index(
        op.f("ix_organization_domains_organization_id"),
        "organization_domains",
        ["organization_id"],
        unique=False,
    )
    # A domain two organizations shared stays with the older one.
    op.execute(
        "INSERT INTO organization_domains (organization_id, domain, created_at) "
        "SELECT MIN(id), LOWER(TRIM(domain)), MIN(created_at) FROM organizations "
        "WHERE domain IS NOT NULL AND TRIM(domain) <> '' GROUP BY LOWER(TRIM(domain))"
    )
    op.drop_index("ix_organizations_domain", table_name="organizations")
    # Not a batch operation: on SQLite that copies the table and drops the old one, and
    # dropping it deletes its rows first, which the foreign keys cascade to the new domains
    # and turn into customers without an organization. SQLite (3.35+) drops an unindexed
    # column in place.
    op.execute("ALTER TABLE organizations DROP COLUMN domain")


def downgrade() -> None:
    op.execute("ALTER TABLE organizations ADD COLUMN domain VARCHAR(255)")
    op.create_index("ix_organizations_domain", "organizations", ["domain"], unique=False)
    # Each organization keeps its first domain.
    op.execute(
        "UPDATE organizations SET domain = (SELECT MIN(d.domain) FROM organization_domains d "
        "WHERE d.organization_id = organizations.id)"
    )
    op.drop_index(
        op.f("ix_organization_domains_organization_id"), table_name="organization_domains"
    )
    op.drop_table("organization_domains")
