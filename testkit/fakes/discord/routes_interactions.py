"""REST routes: application commands, interaction callbacks and webhook follow-ups, with Discord's
3-second deadline and "already acknowledged" rules (a part of FakeDiscord)."""

from __future__ import annotations

import copy
import re
import time
from typing import Any, Literal

from testkit.fakes.discord.records import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    JSON,
    InteractionReply,
    _HTTPError,
    _Interaction,
    _invalid,
    _Req,
    _unknown,
)
from testkit.fakes.discord.validation import _validate_message, _validate_modal


class InteractionRoutes:
    """FakeDiscord's REST routes for application commands and interaction answers."""

    # ------------------------------------------------------------------ REST: application commands

    def _command_list(self, req: _Req) -> list[JSON]:
        if req.params["app_id"] != self.application_id:
            raise _HTTPError(403, "Missing Access", 50001)
        guild_id = req.params.get("guild_id")
        if guild_id is None:
            return self._global_commands
        self._require_guild(guild_id)
        return self._guild_commands.setdefault(guild_id, [])

    def _stored_command(self, body: JSON, guild_id: str | None, old: list[JSON]) -> JSON:
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
            raise _invalid("name", "Command name is invalid", "APPLICATION_COMMAND_INVALID_NAME")
        kind = int(body.get("type", 1))
        if kind == 1 and not body.get("description"):
            raise _invalid("description", "This field is required", "BASE_TYPE_REQUIRED")
        previous = next((c for c in old if c["name"] == name and c["type"] == kind), None)
        stored: JSON = {
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "options": [],
            **copy.deepcopy(body),
            "id": previous["id"] if previous else self.snowflake(),
            "application_id": self.application_id,
            "type": kind,
            "version": self.snowflake(),
        }
        stored.setdefault("description", "")
        if guild_id is not None:
            stored["guild_id"] = guild_id
        return stored

    async def _r_get_commands(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            return 200, copy.deepcopy(self._command_list(req))

    async def _r_put_commands(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, list) else []
        with self._lock:
            current = self._command_list(req)
            stored = [self._stored_command(c, req.params.get("guild_id"), current) for c in body]
            names = [(c["name"], c["type"]) for c in stored]
            if len(set(names)) != len(names):
                raise _invalid(
                    "0.name",
                    "Application command names must be unique",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                )
            current[:] = stored
            return 200, copy.deepcopy(stored)

    async def _r_post_command(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            current = self._command_list(req)
            stored = self._stored_command(body, req.params.get("guild_id"), current)
            current[:] = [c for c in current if c["id"] != stored["id"]] + [stored]
            return 201, copy.deepcopy(stored)

    # ------------------------------------------------------------------ REST: interactions

    async def _r_callback(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            rec = self._interactions.get(req.params["interaction_id"])
            if rec is None or rec.token != req.params["token"]:
                raise _unknown("interaction", 10062)
            if rec.callback_type is not None:
                raise _HTTPError(400, "Interaction has already been acknowledged.", 40060)
            deadline = self.interaction_deadline
            if deadline is not None and time.monotonic() - rec.created > deadline:
                raise _unknown("interaction", 10062)
            kind = int(body.get("type", 0))
            data = body.get("data") or {}
            if kind in (6, 7) and rec.type not in (3, 5):
                raise _invalid("type", "Interaction callback type is invalid for this interaction")
            if kind not in (1, 4, 5, 6, 7, 8, 9):
                raise _invalid("type", "Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12).")
            if kind in (4, 7):
                _validate_message(data, creating=kind == 4)
            if kind == 9:
                if rec.type not in (2, 3):  # a modal answers a command or a click, never a modal submit
                    raise _invalid("type", "Interaction callback type is invalid for this interaction")
                _validate_modal(data)
                rec.modal = copy.deepcopy(data)
            rec.callback_type = kind
            interaction: JSON = {"id": rec.id, "type": rec.type}
            resource: JSON | None = None
            created: JSON | None = None
            updated: JSON | None = None
            ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            if kind in (4, 5):
                content = (
                    data
                    if kind == 4
                    else {"content": "", "flags": int(data.get("flags") or 0) | FLAG_LOADING}
                )
                msg = self._store_new_message(
                    rec.channel_id,
                    self.bot_user,
                    content,
                    msg_type=20 if rec.type == 2 else 0,
                    interaction=rec,
                )
                rec.original_id = str(msg["id"])
                rec.loading = kind == 5
                interaction.update(
                    response_message_id=msg["id"],
                    response_message_loading=kind == 5,
                    response_message_ephemeral=ephemeral,
                )
                resource = {"type": kind, "message": msg}
                created = None if ephemeral else msg
            elif kind in (6, 7):
                rec.original_id = rec.message_id
                if kind == 7 and rec.message_id is not None:
                    target = self._messages[rec.message_id]
                    self._apply_edit(target, data)
                    updated = self._render_message(rec.message_id)
                    resource = {"type": 7, "message": updated}
                    if target["flags"] & FLAG_EPHEMERAL:
                        updated = None
            rec.replies.append(
                InteractionReply(
                    "callback", kind, copy.deepcopy(body), rec.original_id, ephemeral, time.monotonic()
                )
            )
            answer: JSON = {"interaction": interaction}
            if resource is not None:
                answer["resource"] = resource
        if created is not None:
            await self._dispatch_message("MESSAGE_CREATE", created)
        if updated is not None:
            await self._dispatch_message("MESSAGE_UPDATE", updated)
        if req.query.get("with_response", "").lower() in ("1", "true"):
            return 200, answer
        return 204, None

    def _require_hook(self, req: _Req) -> _Interaction:
        rec = self._by_token.get(req.params["token"])
        if req.params["app_id"] != self.application_id or rec is None or rec.callback_type is None:
            raise _unknown("Webhook", 10015)
        return rec

    async def _r_followup(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            rec = self._require_hook(req)
            _validate_message(body, creating=True)
            if rec.loading and rec.original_id is not None:
                # The first follow-up after a "thinking" defer replaces the loading message.
                target = self._messages[rec.original_id]
                edit = {k: v for k, v in body.items() if k != "flags"}
                self._apply_edit(target, edit)
                target["flags"] &= ~FLAG_LOADING
                rec.loading = False
                msg = self._render_message(rec.original_id)
                event = "MESSAGE_UPDATE"
            else:
                msg = self._store_new_message(rec.channel_id, self.bot_user, body, interaction=rec)
                event = "MESSAGE_CREATE"
            ephemeral = bool(msg["flags"] & FLAG_EPHEMERAL)
            rec.replies.append(
                InteractionReply(
                    "followup", None, copy.deepcopy(body), str(msg["id"]), ephemeral, time.monotonic()
                )
            )
        if not ephemeral:
            await self._dispatch_message(event, msg)
        if req.query.get("wait", "").lower() in ("1", "true"):
            return 200, msg
        return 204, None

    def _hook_target(self, rec: _Interaction, message_id: str) -> str:
        mid = rec.original_id if message_id == "@original" else message_id
        if mid is None or mid not in self._messages:
            raise _unknown("Message", 10008)
        if message_id != "@original" and self._messages[mid].get("webhook_id") != self.application_id:
            raise _unknown("Message", 10008)
        return mid

    async def _r_get_hook_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            rec = self._require_hook(req)
            return 200, self._render_message(self._hook_target(rec, req.params["message_id"]))

    async def _r_edit_hook_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            rec = self._require_hook(req)
            mid = self._hook_target(rec, req.params["message_id"])
            _validate_message(body, creating=False)
            target = self._messages[mid]
            self._apply_edit(target, {k: v for k, v in body.items() if k != "flags"})
            if mid == rec.original_id:
                target["flags"] &= ~FLAG_LOADING
                rec.loading = False
            msg = self._render_message(mid)
            ephemeral = bool(msg["flags"] & FLAG_EPHEMERAL)
            kind: Literal["edit_original", "edit_followup"] = (
                "edit_original" if req.params["message_id"] == "@original" else "edit_followup"
            )
            rec.replies.append(
                InteractionReply(kind, None, copy.deepcopy(body), mid, ephemeral, time.monotonic())
            )
        if not ephemeral:
            await self._dispatch_message("MESSAGE_UPDATE", msg)
        return 200, msg

    async def _r_delete_hook_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            rec = self._require_hook(req)
            mid = self._hook_target(rec, req.params["message_id"])
            msg = self._messages[mid]
            ephemeral = bool(msg["flags"] & FLAG_EPHEMERAL)
            self._delete_message(mid)
            rec.replies.append(InteractionReply("delete", None, {}, mid, ephemeral, time.monotonic()))
        if not ephemeral:
            await self.dispatch(
                "MESSAGE_DELETE", {"id": mid, "channel_id": msg["channel_id"], "guild_id": self.guild_id}
            )
        return 204, None
