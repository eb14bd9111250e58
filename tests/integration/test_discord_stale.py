"""A stale request on Discord, on the wire (issue 21, item 2): the card says what changed and carries the
`signoff:rerequest:<id>` button; its click (through the fake gateway, an unmodified discord.py client) makes a new
pending request by the clicker (the refusal on a request that is not stale: tests/integration/test_stale.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client

from adapters.kubernetes import connect
from core.domain.approvals import RequestStatus
from testkit.fakes.discord import FakeDiscord
from testkit.support.discord import (
    ALICE,
    BOB,
    CAROL,
    click,
    custom_ids,
    description,
    discord_service,
    requested,
    wait_card,
)


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")):
            server.add_member(uid, name)
        yield server


def embed_text(message: dict[str, Any]) -> str:
    embed = message["embeds"][0]
    return " ".join([str(embed.get("description", "")), *(f"{f['name']} {f['value']}" for f in embed["fields"])])


async def test_request_again_on_discord(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        assert app.sandbox is not None
        card, _ = await requested(fake, app, risk="high")
        assert "signed R-1" in await click(fake, BOB, card["id"], "signoff:approve:R-1")
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:9.9.9"}]}}}}
        api_client = connect.for_url(app.sandbox.url, app.sandbox.token)
        try:
            await asyncio.to_thread(client.AppsV1Api(api_client).patch_namespaced_deployment, "api", "prod", patch)
        finally:
            api_client.close()  # type: ignore[no-untyped-call]
        await click(fake, CAROL, card["id"], "signoff:approve:R-1")
        stale = await wait_card(fake, "R-1", lambda m: "STALE" in description(m))
        assert "image (api): ghcr.io/acme/api:1.4.2 → ghcr.io/acme/api:9.9.9" in embed_text(stale)
        assert custom_ids(stale) == ["signoff:rerequest:R-1"]
        assert (await app.service.get("R-1")).status is RequestStatus.stale

        text = await click(fake, CAROL, stale["id"], "signoff:rerequest:R-1")
        assert "R-2" in text, text
        again = await app.service.get("R-2")
        assert again.status is RequestStatus.pending and again.requested_by == "carol"
        card2 = await wait_card(fake, "R-2")
        assert custom_ids(card2)[0] == "signoff:approve:R-2"  # a pending card: no Request again on it
