"""leases shared by replicas; rate events for per-person limits across replicas

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("until", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "rate_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_events", schema=None) as batch_op:
        batch_op.create_index("ix_rate_events_person", ["person", "kind", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_events", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_events_person")
    op.drop_table("rate_events")
    op.drop_table("leases")
