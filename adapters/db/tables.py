"""The schema. Instants are stored as fixed-width UTC text (`core.domain.events.format_at`), which sorts
correctly and reads back identically on SQLite and PostgreSQL, so hashes and comparisons never
depend on a driver's datetime handling."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

sequences = sa.Table(
    "sequences", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

requests = sa.Table(
    "requests", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("number", sa.BigInteger, nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("incident_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False),
    sa.Column("stale_at", sa.String(32), nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.String(32), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("cluster", sa.String(64), nullable=True),
    # One operation per target at a time, in the order approved (core/domain/pinning.py, migration 0009).
    sa.Column("target_key", sa.String(400), nullable=True),
    sa.Column("approved_at", sa.String(32), nullable=True),
    sa.Column("review_status", sa.String(16), nullable=True),  # a break glass's review still owed (0008)
    sa.Column("review_by", sa.String(200), nullable=True),
    sa.Index("ix_requests_status", "status", "number"),
    sa.Index("ix_requests_review", "review_status", "review_by"),
    sa.Index("ix_requests_incident", "incident_id"),
    sa.Index("ix_requests_requester", "requested_by", "number"),
    sa.Index("ix_requests_created", "created_at", "number"),
    sa.Index("ix_requests_cluster", "cluster", "number"),
    sa.Index("ix_requests_target", "target_key", "status"),
)

signatures = sa.Table(
    "signatures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(32), sa.ForeignKey("requests.id"), nullable=False),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("via", sa.String(32), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    # One person signs a request once, whatever platform and however concurrent the clicks.
    sa.UniqueConstraint("request_id", "person", name="uq_signature_per_person"),
)

timeline = sa.Table(
    "timeline", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("actor_role", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(32), nullable=True),
    sa.Column("incident_id", sa.String(64), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Index("ix_timeline_request", "request_id", "seq"),
    sa.Index("ix_timeline_incident", "incident_id", "seq"),
)

chain_head = sa.Table(
    "chain_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key", sa.String(64), nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("next_attempt_at", sa.String(32), nullable=False),
    sa.Column("leased_until", sa.String(32), nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("delivered_at", sa.String(32), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_due", "status", "next_attempt_at", "id"),
    sa.Index("ix_outbox_key", "platform", "key", "status"),
)

anchors = sa.Table(
    "anchors", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("thread", sa.String(64), nullable=True),
    sa.Index("ix_anchors_message", "platform", "message_id"),
    sa.Index("ix_anchors_thread", "platform", "thread"),
)

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(128), nullable=True, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    # The correlation key while the incident is open, NULL once resolved: replicas cannot open two
    # incidents for one problem (NULLs never collide, so resolved incidents keep their history).
    sa.Column("open_key", sa.String(300), nullable=True, unique=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Index("ix_incidents_status", "status"),
    sa.Index("ix_incidents_created", "created_at", "id"),
)

# Every alert that joined an incident, by Alertmanager's fingerprint@startsAt: a repeat is recognised,
# a resolve finds its incident, and the pods are counted once each.
incident_alerts = sa.Table(
    "incident_alerts", metadata,
    sa.Column("alert_key", sa.String(128), primary_key=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("pod", sa.String(256), nullable=True),
    sa.Column("firing", sa.Boolean, nullable=False),
    sa.Index("ix_incident_alerts_pod", "incident_id", "pod"),
)

# New cards per chat channel, for the flood budget shared by replicas; `digest_at` is set when
# a card held back by the budget was listed in a digest message.
channel_cards = sa.Table(
    "channel_cards", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("message_id", sa.Integer, nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("carded", sa.Boolean, nullable=False),
    sa.Column("digest_at", sa.String(32), nullable=True),
    sa.Index("ix_channel_cards_channel", "platform", "channel", "at"),
)

# One row per channel: locked while its budget is spent, and when its last digest went out.
channel_digests = sa.Table(
    "channel_digests", metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("channel", sa.String(64), primary_key=True),
    sa.Column("last_at", sa.String(32), nullable=True),
)

playbooks = sa.Table(
    "playbooks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # Same trigger and template = the same playbook; the database refuses a second copy.
    sa.Column("identity", sa.String(64), nullable=False, unique=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Index("ix_playbooks_created", "created_at", "id"),
)

playbook_votes = sa.Table(
    "playbook_votes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("playbook_id", sa.String(32), sa.ForeignKey("playbooks.id"), nullable=False),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("approve", sa.Boolean, nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.UniqueConstraint("playbook_id", "person", name="uq_playbook_vote_per_person"),
)

# Named leases shared by replicas: e.g. which process holds the Discord gateway session.
leases = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("until", sa.String(32), nullable=False),
)

# What a person did recently, for rate limits that hold across replicas (pruned as it ages).
rate_events = sa.Table(
    "rate_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Index("ix_rate_events_person", "person", "kind", "at"),
)

# How far each stream of the timeline to an outside sink (the SIEM webhook) has been acknowledged.
stream_positions = sa.Table(
    "stream_positions", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("not_before", sa.String(32), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)

# Chat deliveries already handled, so a platform's retry (or a replayed request) that lands on any replica is
# answered once: Slack slash commands by trigger_id, events by event_id (adapters/db/dedupe.py, pruned after a day).
chat_deliveries = sa.Table(
    "chat_deliveries", metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Index("ix_chat_deliveries_at", "at"),
)
