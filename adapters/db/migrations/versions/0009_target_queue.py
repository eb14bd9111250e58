"""one operation per target at a time: the target's key and the approval time, as columns the claim queries

A request's pin (the fingerprint of its target) lives in the request's JSON document (`data`).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Requests made before keep no key (NULL): they queue behind nothing and nothing queues behind them.
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_key", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_requests_target", ["target_key", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_target")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("target_key")
