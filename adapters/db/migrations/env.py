"""Alembic environment: signoff always hands in a live connection (see Database.upgrade)."""

from __future__ import annotations

from alembic import context

from adapters.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `signoff db upgrade`, which provides the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
