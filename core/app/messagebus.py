"""What happened to a request, told to the services that care, inside the transaction that made it happen.

A small typed message bus (cosmicpython's, in spirit): an event is a frozen class, a handler takes the
unit of work and one event of its type, and the composition root registers handlers per type. The
transition that stores a change publishes its events (see `core.app.transitions`), so the handlers'
rows commit or roll back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from core.domain.approvals import ApprovalRequest
from core.ports import UnitOfWork


@dataclass(frozen=True)
class RequestCreated:
    """A request was stored (its card is queued)."""

    request: ApprovalRequest


@dataclass(frozen=True)
class RequestFinished:
    """A request's operation ended with a known outcome: succeeded, failed or blocked."""

    request: ApprovalRequest


Event = RequestCreated | RequestFinished
E = TypeVar("E", RequestCreated, RequestFinished)
Handler = Callable[[UnitOfWork, E], None]


class MessageBus:
    """Event type → its handlers, run in registration order inside the publisher's transaction."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler[Any]]] = {}

    def on(self, kind: type[E], handler: Handler[E]) -> Self:
        self._handlers.setdefault(kind, []).append(handler)
        return self

    def handlers(self, kind: type[Event]) -> tuple[Handler[Any], ...]:
        return tuple(self._handlers.get(kind, ()))

    def publish(self, uow: UnitOfWork, event: Event) -> None:
        """A handler that raises rolls the whole transaction back: what happened and what follows are one."""
        for handler in self._handlers.get(type(event), ()):
            handler(uow, event)
