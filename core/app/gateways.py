"""The chat gateways of one process: the `GatewayRegistry` the chat adapters plug into."""

from __future__ import annotations

import structlog

from core.app.delivery import OutboxDispatcher
from core.app.service import ApprovalService
from core.ports import ChatGateway

log = structlog.get_logger(__name__)


class ChatGateways:
    """Implements `core.ports.GatewayRegistry` over the outbox dispatcher and the approval service.

    The gateway goes to the dispatcher (which delivers through it); the default channel goes to the
    approval service (which places cards of requests that come from the API or an alert).
    """

    def __init__(self, dispatcher: OutboxDispatcher, approvals: ApprovalService) -> None:
        self._dispatcher = dispatcher
        self._approvals = approvals

    def register(self, gateway: ChatGateway, default_channel: str | None = None) -> None:
        self._dispatcher.gateways[gateway.platform] = gateway
        if default_channel:
            self._approvals.default_places[gateway.platform] = default_channel
        log.info("chat.gateway_registered", platform=gateway.platform, default_channel=default_channel)

    def unregister(self, gateway: ChatGateway) -> None:
        # The default channel stays: requests made meanwhile still get a card there, delivered by the
        # next process (or start) that registers this platform.
        if self._dispatcher.gateways.get(gateway.platform) is gateway:
            del self._dispatcher.gateways[gateway.platform]
            log.info("chat.gateway_unregistered", platform=gateway.platform)

    def place(self, platform: str, default_channel: str) -> None:
        self._approvals.default_places[platform] = default_channel
