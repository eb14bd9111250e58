"""`signoff playbooks`: the learned playbooks with status, effectiveness and use."""

from __future__ import annotations

from adapters.db.database import Database
from bot.settings import Settings
from core.learning import playbooks_text


async def list_playbooks(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await db.upgrade()
        playbooks = await db.read(lambda uow: uow.playbooks.all())
    finally:
        await db.dispose()
    print(playbooks_text(playbooks))
    return 0
