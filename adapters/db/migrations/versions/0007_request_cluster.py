"""several clusters: the cluster a request is for, as a column the list API filters and pages by

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Requests made before several clusters keep no cluster (NULL): they ran on the one cluster there was.
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cluster", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_requests_cluster", ["cluster", "number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_cluster")
        batch_op.drop_column("cluster")
