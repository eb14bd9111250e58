"""The discord.py client: slash commands, button clicks, thread replies and reactions → the core.

Every event is handed at once to a task group the runtime owns (`attach`), so handlers are
supervised, drained on shutdown, and never block discord.py's gateway reader. Interactions
are acknowledged first (an ephemeral "thinking" defer, well inside Discord's 3 s deadline),
then the core runs and its `Reply` follows up.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Coroutine
from typing import Any

import discord
import structlog
from discord import app_commands

from adapters.discord.commands import SignoffGroup, canonical_commands
from adapters.discord.render import MESSAGE_LIMIT, comment_modal, confirm_modal, dispute_modal, message_pieces
from adapters.discord.translate import (
    COMMENT_INPUT,
    CONFIRM_INPUT,
    CONFIRM_WORD,
    REASON_INPUT,
    button_action,
    context,
    custom_id_word,
    modal_values,
    without_bot_mention,
)
from adapters.discord.views import TEMPLATE, SignoffButton
from core.app.handlers import ChatCommands
from core.chat import breakglass_commands as glass
from core.chat.cards import ButtonAction
from core.chat.commands import ChatContext, Command, Reply
from core.chat.parser import from_button, from_comment, from_confirmation
from core.chat.sentences import NO_SERVER_TEXT, UNFINISHED_TEXT

log = structlog.get_logger(__name__)

INTERNAL_ERROR_TEXT = UNFINISHED_TEXT["crashed"]

ALREADY_ACKNOWLEDGED = 40060  # another replica (or an earlier attempt) answered the interaction
_CUSTOM_ID = re.compile(TEMPLATE)
_COMMENT_WORD = custom_id_word(ButtonAction.approve_comment)


def signoff_intents() -> discord.Intents:
    """Only what signoff reads: guilds (channels, threads), guild messages with their text (thread
    replies such as `timeline`; message content is privileged), and reactions (playbook votes).
    Interactions need no intent. Members and presences are not needed: events carry the user id."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = True
    intents.guild_reactions = True
    return intents


class SignoffClient(discord.Client):
    def __init__(
        self, *, chat: ChatCommands, guild_id: int | None = None, channel_id: int | None = None,
        guild_ready_timeout: float = 2.0, max_ratelimit_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            intents=signoff_intents(),
            guild_ready_timeout=guild_ready_timeout,
            # Longer rate limits raise RateLimited instead of sleeping inside a call: the outbox
            # then reschedules the message and keeps delivering the others.
            max_ratelimit_timeout=max_ratelimit_timeout,
            # Reasons and names are typed by people: never let them ping @everyone or a role.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.chat = chat
        self.guild_id = guild_id
        self.channel_id = channel_id
        # The one server served: DISCORD_GUILD_ID, else DISCORD_CHANNEL_ID's (found at start-up), else none.
        # Interactions, replies and reactions from any other server (or a DM) are refused, as Slack refuses
        # other workspaces; with none, everything is refused, saying which setting to add.
        self.served_guild: int | None = None
        if guild_id is not None:
            self._serve(guild_id)
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(SignoffGroup(self.on_command),
                              guild=discord.Object(guild_id) if guild_id is not None else None)
        self._group: asyncio.TaskGroup | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._accepting = True
        self.commands_synced: bool | None = None  # None: not tried; False: failed; True: in place

    # ------------------------------------------------------------------ lifecycle

    def attach(self, group: asyncio.TaskGroup) -> None:
        """The task group that runs event handlers; the runtime owns and awaits it."""
        self._group = group

    async def setup_hook(self) -> None:
        self.add_dynamic_items(SignoffButton)
        await self._find_served_guild()
        await self.sync_commands()

    def _serve(self, guild_id: int) -> None:
        self.served_guild = guild_id
        self.chat.serve_workspace("discord", str(guild_id))

    async def _find_served_guild(self) -> None:
        """Without DISCORD_GUILD_ID: the server DISCORD_CHANNEL_ID belongs to (one REST read after login)."""
        if self.served_guild is not None or self.channel_id is None:
            if self.served_guild is None:
                log.warning("discord.no_server_configured", hint="set DISCORD_GUILD_ID or DISCORD_CHANNEL_ID")
            return
        try:
            channel = await self.fetch_channel(self.channel_id)
        except (discord.HTTPException, discord.InvalidData) as exc:
            log.error("discord.channel_unreadable", channel_id=self.channel_id, error=type(exc).__name__,
                      hint="check DISCORD_CHANNEL_ID, or set DISCORD_GUILD_ID")
            return
        guild = getattr(channel, "guild", None)
        if guild is None:
            log.error("discord.channel_outside_servers", channel_id=self.channel_id, hint="set DISCORD_GUILD_ID")
            return
        self._serve(guild.id)
        log.info("discord.served_guild", guild_id=guild.id, source="DISCORD_CHANNEL_ID")

    def _unserved(self) -> Reply | None:
        """The refusal for every interaction while no server is configured (the core refuses other servers)."""
        if self.served_guild is not None:
            return None
        log.warning("discord.refused_no_server")
        return Reply(text=NO_SERVER_TEXT, ok=False)

    async def sync_commands(self) -> None:
        """Put `/signoff` in place: in DISCORD_GUILD_ID (instantly) when set, else globally (may take
        up to an hour to appear). Skipped when Discord already has the same commands."""
        guild = discord.Object(self.guild_id) if self.guild_id is not None else None
        scope = str(self.guild_id) if self.guild_id is not None else "global"
        wanted = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        try:
            app_id = self.application_id
            assert app_id is not None  # set by login
            if self.guild_id is not None:
                current = await self.http.get_guild_commands(app_id, self.guild_id)
            else:
                current = await self.http.get_global_commands(app_id)
            if canonical_commands([dict(c) for c in current]) == canonical_commands(wanted):
                log.info("discord.commands_unchanged", scope=scope, commands=len(wanted))
                self.commands_synced = True
                return
            await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            # Buttons keep working without commands, so this is reported, not fatal.
            self.commands_synced = False
            log.error("discord.commands_sync_failed", scope=scope, status=exc.status, code=exc.code,
                      error=exc.text[:200],
                      hint="invite the bot with the applications.commands scope; check DISCORD_GUILD_ID")
            return
        self.commands_synced = True
        log.info("discord.commands_synced", scope=scope, commands=len(wanted))

    async def drain(self, timeout: float) -> None:
        """Stop taking events, let in-flight handlers finish (bounded), cancel the rest."""
        self._accepting = False
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("discord.handlers_cancelled", count=len(late))
                await asyncio.wait(late)

    def _spawn(self, what: str, work: Coroutine[Any, Any, None]) -> None:
        group = self._group
        if group is None or not self._accepting:
            work.close()
            log.info("discord.event_dropped", event=what, reason="shutting down")
            return
        try:
            task = group.create_task(self._guarded(what, work))
        except RuntimeError:  # the group is already finishing
            work.close()
            log.info("discord.event_dropped", event=what, reason="shutting down")
            return
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    @staticmethod
    async def _guarded(what: str, work: Awaitable[None]) -> None:
        # One failing handler must not cancel the task group (and with it the whole adapter).
        try:
            await work
        except Exception:
            log.exception("discord.handler_failed", event=what)

    # ------------------------------------------------------------------ interactions

    def on_command(self, interaction: discord.Interaction[Any], command: Command) -> None:
        self._spawn("command", self._command(interaction, command))

    def on_button(self, interaction: discord.Interaction[Any], action: str, value: str) -> None:
        if button_action(action) == ButtonAction.approve_comment:
            self._spawn("comment_form", self._comment_form(interaction, value))
            return
        if action == CONFIRM_WORD:
            self._spawn("confirm_form", self._comment_form(interaction, value, confirm=True))
            return
        if button_action(action) == ButtonAction.dispute:  # a break glass review: the reason in a modal
            self._spawn("dispute_form", self._comment_form(interaction, value, ButtonAction.dispute))
            return
        self._spawn("button", self._button(interaction, action, value))

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A modal's submission, matched on its custom_id (`signoff:comment:R-7`), whichever process opened it."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        found = _CUSTOM_ID.fullmatch(str(data.get("custom_id", "")))
        if found is not None and found["action"] == ButtonAction.dispute:
            reason = modal_values(data).get(REASON_INPUT)
            self._spawn("dispute", self._commented(interaction, found["value"],
                                                   glass.from_options("dispute", found["value"], reason)))
            return
        if found is None or found["action"] not in (_COMMENT_WORD, CONFIRM_WORD):
            return
        values = modal_values(data)
        comment = values.get(COMMENT_INPUT)
        if found["action"] == CONFIRM_WORD:
            command = from_confirmation(found["value"], values.get(CONFIRM_INPUT, ""), comment)
            self._spawn("confirm", self._commented(interaction, found["value"], command))
            return
        self._spawn("comment", self._commented(interaction, found["value"], from_comment(found["value"], comment)))

    async def _command(self, interaction: discord.Interaction[Any], command: Command) -> None:
        if not await self._defer(interaction):
            return
        name = interaction.command.name if interaction.command is not None else type(command).__name__.lower()
        reply = self._unserved() or await self._core(self.chat.run(command, self._interaction_context(interaction)),
                                                     "command", name)
        log.info("discord.command", command=name, user_id=interaction.user.id, ok=reply.ok)
        await self._answer(interaction, reply)

    async def _button(self, interaction: discord.Interaction[Any], action: str, value: str) -> None:
        if not await self._defer(interaction):
            return
        ctx = self._interaction_context(interaction)
        reply = self._unserved() or await self._core(self.chat.run(from_button(action, value), ctx), "button", action)
        log.info("discord.click", action=action, value=value, user_id=interaction.user.id, ok=reply.ok)
        await self._answer(interaction, reply)

    async def _comment_form(self, interaction: discord.Interaction[Any], value: str,
                            action: ButtonAction = ButtonAction.approve_comment, *, confirm: bool = False) -> None:
        """"Approve with comment…": the modal when this person may sign, else why not, privately.

        Unlike a click this answers after the core: a modal must be the interaction's first answer.
        The core only reads (may this person sign?), well inside Discord's 3 s; the submission then
        signs, checked again, through `_commented`.
        """
        ctx = self._interaction_context(interaction)
        reply = self._unserved() or await self._core(
            self.chat.run(from_button(action, value), ctx), "button", str(action))
        if confirm and reply.ok and reply.confirm is None:
            # An Approve checked first (its card was not known) on a request that asks for no name: a plain click.
            await self._button(interaction, ButtonAction.approve, value)
            return
        try:
            if reply.ok and reply.request_id is not None and confirm and reply.confirm is not None:
                await interaction.response.send_modal(confirm_modal(reply.request_id, reply.confirm))
            elif reply.ok and reply.request_id is not None:
                modal = dispute_modal if action == ButtonAction.dispute else comment_modal
                await interaction.response.send_modal(modal(reply.request_id))
            else:
                first, *rest = message_pieces(reply.text)
                await interaction.response.send_message(first, ephemeral=True)
                for piece in rest:
                    await interaction.followup.send(piece, ephemeral=True)
        except discord.InteractionResponded:
            return
        except discord.HTTPException as exc:
            event = "discord.interaction_taken" if exc.code == ALREADY_ACKNOWLEDGED else "discord.modal_failed"
            log.warning(event, interaction_id=interaction.id, status=exc.status, code=exc.code)
            return
        log.info("discord.comment_form", value=value, user_id=interaction.user.id, opened=reply.ok)

    async def _commented(self, interaction: discord.Interaction[Any], value: str, command: Command) -> None:
        """A form's submission (comment, typed confirmation, or a dispute's reason), answered like a click."""
        if not await self._defer(interaction):
            return
        ctx = self._interaction_context(interaction)
        reply = self._unserved() or await self._core(self.chat.run(command, ctx), "modal", "form")
        log.info("discord.comment", value=value, user_id=interaction.user.id, ok=reply.ok)
        await self._answer(interaction, reply)

    async def _defer(self, interaction: discord.Interaction[Any]) -> bool:
        """Acknowledge first: an ephemeral "thinking" answer the follow-up replaces.

        The acknowledgement doubles as a lock: only the process whose defer Discord accepted acts
        on the interaction, so a click delivered twice (or to two replicas) counts once. A defer
        Discord refuses (too late: 10062; already answered: 40060) means we do not act at all; the
        person sees Discord's "interaction failed" and can click again.
        """
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.InteractionResponded:
            return False
        except discord.HTTPException as exc:
            event = "discord.interaction_taken" if exc.code == ALREADY_ACKNOWLEDGED else "discord.defer_failed"
            log.warning(event, interaction_id=interaction.id, status=exc.status, code=exc.code)
            return False
        return True

    async def _core(self, call: Awaitable[Reply], what: str, name: str) -> Reply:
        try:
            return await call
        except Exception:
            log.exception("discord.core_failed", kind=what, name=name)
            return Reply(text=INTERNAL_ERROR_TEXT, ok=False)

    async def _answer(self, interaction: discord.Interaction[Any], reply: Reply) -> None:
        """The core's reply: ephemeral when private (refusals always are), in pieces of 2000 characters."""
        pieces = message_pieces(reply.text)
        try:
            if reply.private or not reply.ok:
                for piece in pieces:  # the first one replaces the "thinking" message
                    await interaction.followup.send(piece, ephemeral=True)
                return
            # The defer was ephemeral; a public answer replaces it with a message everyone sees.
            await interaction.delete_original_response()
            for piece in pieces:
                await interaction.followup.send(piece, ephemeral=False)
        except discord.HTTPException as exc:
            # The action itself is done (the card shows it); only this person's confirmation is lost.
            log.warning("discord.followup_failed", interaction_id=interaction.id, status=exc.status, code=exc.code)

    def _interaction_context(self, interaction: discord.Interaction[Any]) -> ChatContext:
        return context(interaction.user.id, self._card_channel(interaction.channel_id, interaction.channel),
                       interaction.guild_id)

    @staticmethod
    def _card_channel(channel_id: int | None, channel: object) -> int | None:
        """Where a card for this place goes: a thread's parent channel, since a thread cannot hold threads."""
        if isinstance(channel, discord.Thread) and channel.parent_id is not None:
            return channel.parent_id
        return channel_id

    # ------------------------------------------------------------------ gateway events

    async def on_ready(self) -> None:
        log.info("discord.ready", user_id=self.user.id if self.user else None, guilds=len(self.guilds))
        if self.served_guild is None and self.channel_id is not None:
            # The REST read at start-up failed: the gateway's guilds now say where the channel is.
            channel = self.get_channel(self.channel_id)
            guild = getattr(channel, "guild", None)
            if guild is not None:
                self._serve(guild.id)
                log.info("discord.served_guild", guild_id=guild.id, source="DISCORD_CHANNEL_ID")

    async def on_message(self, message: discord.Message) -> None:
        # Bots (this one included, and webhooks) are ignored: signoff must never answer itself.
        if message.author.bot or message.webhook_id is not None or self.served_guild is None:
            return
        channel = message.channel
        if not isinstance(channel, discord.Thread):
            return  # commands come as slash commands; only thread replies are read
        text = without_bot_mention(message.content, self.user.id if self.user else None)
        if not text.strip():
            return
        parent = channel.parent_id or channel.id
        ctx = context(message.author.id, parent, message.guild.id if message.guild is not None else None)
        self._spawn("thread_message", self._thread_message(str(channel.id), text, ctx))

    async def _thread_message(self, thread_id: str, text: str, ctx: ChatContext) -> None:
        answered = await self.chat.thread_reply(thread_id, text, ctx)
        if answered:
            log.info("discord.thread_answered", thread_id=thread_id, user_id=ctx.account)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.user is not None and payload.user_id == self.user.id:
            return
        if (payload.member is not None and payload.member.bot) or self.served_guild is None:
            return
        channel = self.get_channel(payload.channel_id)
        place = self._card_channel(payload.channel_id, channel)
        ctx = context(payload.user_id, place, payload.guild_id)
        self._spawn("reaction", self._reaction(payload.channel_id, payload.message_id, str(payload.emoji),
                                               payload.user_id, ctx))

    async def _reaction(self, channel_id: int, message_id: int, emoji: str, user_id: int, ctx: ChatContext) -> None:
        reply = await self.chat.reaction(str(message_id), emoji, ctx)
        if reply is None:
            return
        log.info("discord.reaction", message_id=message_id, user_id=user_id, ok=reply.ok)
        # A reaction has no interaction to answer privately; a DM may be refused (privacy settings),
        # so the reactor is told right under the message they reacted to, with a mention only for them.
        channel = self.get_partial_messageable(channel_id)
        reference = discord.MessageReference(message_id=message_id, channel_id=channel_id, fail_if_not_exists=False)
        only_them = discord.AllowedMentions(users=[discord.Object(user_id)], everyone=False, roles=False)
        try:
            mention = f"<@{user_id}> "
            first, *rest = message_pieces(reply.text, MESSAGE_LIMIT - len(mention))
            await channel.send(mention + first, reference=reference, allowed_mentions=only_them)
            for piece in rest:
                await channel.send(piece, allowed_mentions=only_them)
        except discord.HTTPException as exc:
            log.warning("discord.reaction_feedback_failed", message_id=message_id, status=exc.status, code=exc.code)

