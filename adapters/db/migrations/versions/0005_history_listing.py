"""history listing: when incidents and playbooks were created, the indexes the list endpoints page by, and
the positions of streams of the timeline (the SIEM webhook)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from core.domain.events import format_at

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_EPOCH = "1970-01-01T00:00:00.000000Z"


def upgrade() -> None:
    for table in ("incidents", "playbooks"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("created_at", sa.String(length=32), nullable=False,
                                          server_default=_EPOCH))
        _backfill_created_at(table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_created", ["created_at", "id"], unique=False)
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index("ix_requests_requester", ["requested_by", "number"], unique=False)
        batch_op.create_index("ix_requests_created", ["created_at", "number"], unique=False)
    op.create_table(
        "stream_positions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def _backfill_created_at(table: str) -> None:
    """Rows made before this revision carry their creation time only in their JSON (pydantic's ISO form)."""
    connection = op.get_bind()
    for row_id, data in connection.execute(sa.text(f"SELECT id, data FROM {table}")).all():
        created = json.loads(data).get("created_at")
        if created:
            moment = datetime.fromisoformat(created)
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
            connection.execute(sa.text(f"UPDATE {table} SET created_at = :at WHERE id = :id"),
                               {"at": format_at(moment), "id": row_id})


def downgrade() -> None:
    op.drop_table("stream_positions")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_created")
        batch_op.drop_index("ix_requests_requester")
    for table in ("playbooks", "incidents"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_created")
            batch_op.drop_column("created_at")
