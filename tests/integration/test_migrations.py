"""`Database.upgrade()` skips Alembic when the schema is current (start-up time) and still migrates when not."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from adapters.db.database import MIGRATIONS, Database, _current_revision, head_revision


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def test_the_head_revision_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()


async def test_upgrade_migrates_a_schema_behind_the_head_and_leaves_a_current_one(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        assert await db.read(lambda uow: _current_revision(uow.connection)) == head_revision()
        previous = ScriptDirectory.from_config(_config()).get_revision(head_revision()).down_revision
        assert isinstance(previous, str)
        await db.write(lambda uow: command.downgrade(_config(uow.connection), previous))
        assert await db.read(lambda uow: _current_revision(uow.connection)) == previous

        await db.upgrade()  # behind the head: Alembic runs
        assert await db.read(lambda uow: _current_revision(uow.connection)) == head_revision()
        await db.upgrade()  # current: nothing to do, and nothing breaks
        tables = await db.read(lambda uow: set(sa.inspect(uow.connection).get_table_names()))
        assert {"alembic_version", "leases", "rate_events"} <= tables
    finally:
        await db.dispose()
