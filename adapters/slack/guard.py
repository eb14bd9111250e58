"""What every Slack request goes through before (and after) a listener, the way Bolt intends it: one global
middleware for the workspace boundary and for duplicates, and `app.error` for failures.

- The workspace: only the one `auth.test` reported. A command, click or form from another workspace is
  refused, telling the person why and where to ask; an event from there is acknowledged and dropped.
- Duplicates: a slash command is remembered by its `trigger_id` and an event by its `event_id`, in the
  database (`Seen`) so a Slack retry that lands on another replica, or a replayed signed request, is
  acknowledged and dropped.
- Failures: anything a listener or this middleware raises is logged once, acknowledged (so Slack neither
  retries nor shows its own error), and the person is told privately that something went wrong and what
  to do; a form keeps its modal open with that message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

import structlog
from slack_bolt.response import BoltResponse

from adapters.slack import translate
from adapters.slack.render import COMMENT_BLOCK_ID, VIEW_ERROR_MAX
from adapters.slack.translate import Responder
from core.chat.commands import Reply
from core.chat.sentences import UNFINISHED_TEXT, outside_workspace
from core.chat.text import clip

log = structlog.get_logger(__name__)

# Without a database (tests, benches that build the adapter alone): the last this many deliveries.
SEEN_IN_MEMORY = 4096

Tell = Callable[[Responder, Reply], Awaitable[None]]
Submit = Callable[[str, Callable[[], Awaitable[None]]], Awaitable[None]]


class Seen(Protocol):
    async def first_time(self, key: str) -> bool:
        """Remember `key`; False when it was seen before (by any replica sharing the store)."""
        ...


class SeenInMemory:
    """One process's memory of recent deliveries: enough for one replica."""

    def __init__(self, size: int = SEEN_IN_MEMORY) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    async def first_time(self, key: str) -> bool:
        if key in self._keys:
            return False
        self._keys[key] = None
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


ACKED = 200


def _acked() -> BoltResponse:
    return BoltResponse(status=ACKED, body="")


def _form_error(text: str) -> BoltResponse:
    """The answer to a submitted modal that keeps it open with `text` under the comment."""
    return BoltResponse(status=ACKED, body={"response_action": "errors",
                                                     "errors": {COMMENT_BLOCK_ID: clip(text, VIEW_ERROR_MAX)}})


class Guard:
    def __init__(self, *, seen: Callable[[], Seen], served: Callable[[], str | None],
                 bot_user: Callable[[], str | None], tell: Tell, submit: Submit) -> None:
        self._seen = seen
        self._served = served
        self._bot_user = bot_user
        self._tell = tell
        self._submit = submit

    def middleware(self) -> Callable[..., Awaitable[BoltResponse | None]]:
        # A plain function: Bolt injects arguments by parameter name and would try to fill a method's `self`.
        async def guard(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
            served = self._served()
            team = translate.acting_team(body)
            if served is not None and team != served:
                return await self._outside(body, team, served)
            key = translate.delivery_key(body, self._bot_user())
            if key is not None and not await self._seen().first_time(key):
                log.info("slack.duplicate_dropped", key=key[:80])
                return _acked()
            await next()
            return None

        return guard

    def error_handler(self) -> Callable[..., Awaitable[BoltResponse]]:
        async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
            kind = str(body.get("type") or ("slash_command" if "command" in body else "unknown"))
            log.error("slack.request_failed", kind=kind, error=type(error).__name__, exc_info=error)
            text = UNFINISHED_TEXT["crashed"]
            if body.get("type") == "view_submission":
                return _form_error(text)
            to = translate.responder(body)
            if to is not None:
                await self._submit("failure-reply", partial(self._tell, to, Reply(text=text, ok=False)))
            return _acked()

        return on_error

    async def _outside(self, body: dict[str, Any], team: str | None, served: str) -> BoltResponse:
        log.warning("slack.outside_workspace", workspace=team, served=served, kind=str(body.get("type") or ""))
        text = outside_workspace("slack", team, served)
        if body.get("type") == "view_submission":
            return _form_error(text)
        to = translate.responder(body) if body.get("type") != "event_callback" else None
        if to is not None:
            await self._submit("outside-reply", partial(self._tell, to, Reply(text=text, ok=False)))
        return _acked()
