"""break glass: the open review a request owes, and who broke the glass, as columns to find open reviews by

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The review itself lives in the request's data, guarded by its version (one countersignature per person,
    # across replicas); these columns only index the reviews still owed. NULL: no break glass, or cleared.
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("review_by", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_requests_review", ["review_status", "review_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_review")
        batch_op.drop_column("review_by")
        batch_op.drop_column("review_status")
