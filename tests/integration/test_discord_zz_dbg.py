from tests.integration.test_discord_adapter import fake, discord_service, requested, thread_texts, BOB, FakeDiscord, asyncio  # noqa
import adapters.discord.client as c

async def test_dbg(fake: FakeDiscord, database_url: str) -> None:
    orig = c.SignoffClient.on_message
    async def spy(self, message):
        print("ON_MESSAGE", repr(message.content), type(message.channel), message.author.bot, message.webhook_id)
        await orig(self, message)
    c.SignoffClient.on_message = spy
    try:
        async with discord_service(fake, database_url) as app:
            _, thread = await requested(fake, risk="high")
            await fake.post_user_message(BOB, thread, "looks risky")
            await fake.post_user_message(BOB, thread, f"<@{fake.bot_user_id}> Timeline")
            await asyncio.sleep(1.0)
            print(thread_texts(fake, thread))
    finally:
        c.SignoffClient.on_message = orig
