"""A loopback fake of Discord (REST API v10 + gateway websocket) that drives a real discord.py client.

Why: signoff's Discord adapter must be tested through Discord's real wire protocol (docs/design.md §5) with
an unmodified discord.py on the other end. The fake answers the way Discord does (payload shapes that
discord.py 2.7 parses, Discord's JSON error bodies and codes, rate-limit headers, intents and the
message-content rule on the gateway) and keeps the state tests assert on: messages after edits,
threads, reactions, interaction callbacks and follow-ups, registered commands.

Wiring a client to it::

    async with FakeDiscord() as fake:
        with point_discord_py_at(fake):
            client = MyClient(intents=..., guild_ready_timeout=0.05)
            await client.login(fake.token)
            task = asyncio.create_task(client.connect())
            await client.wait_until_ready()
            ...
            await client.close()  # before the fake stops, or the client keeps reconnecting
            await task

``point_discord_py_at`` sets ``discord.http.Route.BASE`` (REST, interaction callbacks and webhooks all
go through it) and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``; both are read at request /
connect time, so set them before ``start()``/``connect()``. A bot in a subprocess gets
``fake.api_url`` / ``fake.gateway_url`` through its settings; serve it with
``with FakeDiscord.running_in_thread() as fake:`` and drive the fake with ``fake.run_sync(coro)`` (its
async helpers also work when awaited from another event loop).

discord.py behaviour the fake accommodates (read from discord.py 2.7.1, ``discord/http.py``,
``discord/webhook/async_.py``, ``discord/gateway.py``, ``discord/state.py``):

* REST bodies are parsed as JSON only when ``Content-Type`` is exactly ``application/json``; the fake
  never adds aiohttp's ``; charset=utf-8``.
* ``HTTPClient.request`` makes up to 5 attempts. A 429 is retried after the *body's* ``retry_after``
  (the headers only feed the bucket bookkeeping) but only if the response carries a ``Via`` header:
  without it discord.py assumes a Cloudflare ban and raises ``HTTPException`` at once. The fake sends
  ``Via: 1.1 google`` like Discord. ``retry_after`` above the client's ``max_ratelimit_timeout`` raises
  ``RateLimited``; ``"global": true`` pauses every request of that client. 500, 502, 504 and 524 are
  retried after sleeping 1, 3, 5, 7 s (``1 + 2 * attempt``); any other 5xx (503!) raises
  ``DiscordServerError`` immediately, as do 5xx after the last attempt. Connection resets are retried
  only for errno 54/10054 (macOS/Windows), not Linux's 104. There is no request timeout besides
  aiohttp's 5-minute default, so a hanging Discord stalls the caller (the ``timeout`` fault models it).
* Interaction callbacks and webhook follow-ups go through ``AsyncWebhookAdapter`` instead: no
  ``Authorization`` header, a lock per (webhook id, token), 429 retried (also only with ``Via``) and
  *every* status >= 500 retried with the same 1, 3, 5 s backoff.
* The callback is ``POST /interactions/{id}/{token}/callback?with_response=1`` and must answer
  ``{"interaction": {id, type, response_message_id, response_message_loading,
  response_message_ephemeral}, "resource": {"type", "message"}}``. Follow-ups from
  ``interaction.followup.send`` always use ``?wait=1`` (application webhooks force it).
* Text frames bypass discord.py's decompressor, so plain JSON frames work although the client
  connects with ``compress=zlib-stream``. ``READY.resume_gateway_url`` is where it reconnects with
  RESUME after a drop; ``INVALID_SESSION`` (false) makes it IDENTIFY again at ``DEFAULT_GATEWAY``.
  ``client.close()`` closes with 1000, which ends the session (as on Discord). ``RESUMED``'s ``d``
  must be an object: discord.py writes into it.
* ``on_ready`` fires ``guild_ready_timeout`` (default 2 s) after the last GUILD_CREATE; pass
  ``guild_ready_timeout=0.05`` to ``Client`` in tests. Members in GUILD_CREATE come with
  ``member_count`` equal to their number, so a client with the members intent needs no chunking.
  ``Client.before_identify_hook`` sleeps 5 s before every non-initial IDENTIFY (after
  INVALID_SESSION); override it in tests that invalidate sessions.
* Successful responses carry ``X-RateLimit-*`` headers with plenty remaining: discord.py tracks them
  per bucket and would otherwise throttle itself. Injected faults apply to REST only.
* Interactions: ``attachment_size_limit`` is required; a member needs ``flags``; an application
  command's ``data.guild_id`` makes the ``CommandTree`` look among guild commands (so the fake sets it
  for guild-registered and unregistered commands). A ``DynamicItem`` only fires when the clicked
  message's components contain the ``custom_id`` (otherwise discord.py drops the click silently), so
  ``click`` sends the stored message and refuses custom ids the message does not carry.

Discord behaviour modelled beyond discord.py's needs: message-content stripping without the
``message_content`` intent (except the bot's own messages and ones mentioning it), intent filtering of
dispatches, privileged intents (close 4014 unless allowed), the 3-second deadline for the first
interaction answer (404 ``Unknown interaction`` 10062), "already acknowledged" (400, 40060), the
first follow-up after a "thinking" defer replacing the loading message, thread ids equal to their
starter message's id, ``enforce_nonce`` de-duplication, and the basic length limits (content 2000,
``custom_id`` 100, 5 action rows of 5 buttons, embeds).

The package, one job per module: `fake` (FakeDiscord: its state, seeding and inspection, and
`point_discord_py_at`), `gateway` (the websocket: IDENTIFY, RESUME, dispatches), `rest` (REST plumbing:
routing, recording, JSON bodies) with the routes by resource in `routes_guild`, `routes_channels` and
`routes_interactions`, `faults` (failure injection), `driving` (slash commands, clicks, modals, messages
and reactions as people send them), `payloads` and `messages` (Discord's objects and the message store),
`records` (constants and the records tests read) and `validation` (Discord's limits on what is sent).
"""

from __future__ import annotations

from testkit.fakes.discord.fake import FakeDiscord, point_discord_py_at
from testkit.fakes.discord.records import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    DiscordCall,
    GatewayFrame,
    InteractionReply,
)

__all__ = [
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_GUILD_MESSAGE_REACTIONS",
    "INTENT_MESSAGE_CONTENT",
    "DiscordCall",
    "FakeDiscord",
    "GatewayFrame",
    "InteractionReply",
    "point_discord_py_at",
]
