"""Reading history page by page, for the list endpoints and whatever shows history outside chat."""

from __future__ import annotations

from typing import Any

from core.domain.approvals import ApprovalRequest
from core.domain.incidents import Incident
from core.domain.listing import IncidentQuery, Page, PlaybookQuery, RequestQuery
from core.domain.playbooks import Playbook
from core.ports import Store


class History:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def requests(self, query: RequestQuery) -> Page[ApprovalRequest]:
        return await self._store.read(lambda uow: uow.history.requests(query))

    async def incidents(self, query: IncidentQuery) -> Page[Incident]:
        return await self._store.read(lambda uow: uow.history.incidents(query))

    async def playbooks(self, query: PlaybookQuery) -> Page[Playbook]:
        return await self._store.read(lambda uow: uow.history.playbooks(query))

    async def chain(self, *, after: int, limit: int) -> list[dict[str, Any]]:
        return await self._store.read(lambda uow: uow.history.chain(after=after, limit=limit))

    async def head(self) -> tuple[int, str] | None:
        """The chain's last event as the store recorded it: (seq, hash), or None before the first."""
        return await self._store.read(lambda uow: uow.timeline.head())
