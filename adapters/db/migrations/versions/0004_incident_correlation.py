"""incident correlation (open key, the alerts of an incident) and the per-channel card budget

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("open_key", sa.String(length=300), nullable=True))
        batch_op.create_unique_constraint("uq_incidents_open_key", ["open_key"])
    op.create_table(
        "incident_alerts",
        sa.Column("alert_key", sa.String(length=128), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("pod", sa.String(length=256), nullable=True),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("alert_key"),
    )
    with op.batch_alter_table("incident_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_incident_alerts_pod", ["incident_id", "pod"], unique=False)
    # Alerts stored before correlation keep being recognised (a repeat or a resolve) by their key.
    op.execute(
        "INSERT INTO incident_alerts (alert_key, incident_id, pod, firing) "
        "SELECT fingerprint, id, NULL, status IN ('open', 'investigating') FROM incidents "
        "WHERE fingerprint IS NOT NULL"
    )
    op.create_table(
        "channel_cards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("carded", sa.Boolean(), nullable=False),
        sa.Column("digest_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("channel_cards", schema=None) as batch_op:
        batch_op.create_index("ix_channel_cards_channel", ["platform", "channel", "at"], unique=False)
    op.create_table(
        "channel_digests",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("last_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("platform", "channel"),
    )


def downgrade() -> None:
    op.drop_table("channel_digests")
    with op.batch_alter_table("channel_cards", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_cards_channel")
    op.drop_table("channel_cards")
    with op.batch_alter_table("incident_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_alerts_pod")
    op.drop_table("incident_alerts")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_incidents_open_key", type_="unique")
        batch_op.drop_column("open_key")
