"""chat deliveries already handled (Slack slash commands by trigger_id, events by event_id), shared by replicas

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_deliveries",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("chat_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_chat_deliveries_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_deliveries_at")
    op.drop_table("chat_deliveries")
