"""What Discord checks in what a bot sends (message bodies, components, modals, embeds, options), and
small helpers over components and emoji."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from testkit.fakes.discord.records import JSON, _HTTPError, _invalid

# ---------------------------------------------------------------------------------- helpers


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


def _emoji_payload(emoji: str) -> JSON:
    """``"✅"`` -> unicode emoji; ``"name:123"`` -> custom emoji."""
    name, _, emoji_id = emoji.partition(":")
    if emoji_id.isdigit():
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": emoji}


def _walk_components(components: list[JSON]) -> Iterator[JSON]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components", []))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory


def _find_component(components: list[JSON], custom_id: str) -> JSON | None:
    return next((c for c in _walk_components(components) if c.get("custom_id") == custom_id), None)


def _number_components(components: list[JSON]) -> list[JSON]:
    """Give every component a numeric ``id``, as Discord does for those sent without one."""
    used = {c["id"] for c in _walk_components(components) if isinstance(c.get("id"), int)}
    counter = 0
    for component in _walk_components(components):
        if not isinstance(component.get("id"), int):
            counter += 1
            while counter in used:
                counter += 1
            component["id"] = counter
    return components


def _normalise_embeds(embeds: list[JSON]) -> list[JSON]:
    out = []
    for original in embeds:
        embed = copy.deepcopy(original)
        embed.setdefault("type", "rich")
        for fld in embed.get("fields", []):
            fld.setdefault("inline", False)
        embed["content_scan_version"] = 0
        out.append(embed)
    return out


def _validate_message(body: JSON, *, creating: bool) -> None:
    """Discord's checks that catch real adapter bugs: lengths, empty messages, component limits."""
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        raise _invalid("content", "Must be 2000 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise _invalid("embeds", "Must be 10 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    for i, embed in enumerate(embeds):
        _validate_embed(i, embed)
    components = body.get("components") or []
    is_v2 = bool(int(body.get("flags") or 0) & (1 << 15))
    if not is_v2:
        if len(components) > 5:
            raise _invalid("components", "Must be 5 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
        for i, row in enumerate(components):
            if row.get("type") != 1:
                raise _invalid(
                    f"components.{i}.type", "Top-level components must be action rows", "UNION_TYPE_CHOICES"
                )
            if not 1 <= len(row.get("components", [])) <= 5:
                raise _invalid(
                    f"components.{i}.components", "Must be between 1 and 5 in length.", "BASE_TYPE_BAD_LENGTH"
                )
    seen: set[str] = set()
    for comp in _walk_components(components):
        custom_id = comp.get("custom_id")
        if comp.get("type") == 2 and comp.get("style") not in (5, 6) and not custom_id:
            raise _invalid("components", "A custom id is required", "BASE_TYPE_REQUIRED")
        if custom_id is not None:
            if len(str(custom_id)) > 100:
                raise _invalid("components", "Must be 100 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
            if custom_id in seen:
                raise _invalid(
                    "components", "Component custom id cannot be duplicated", "COMPONENT_CUSTOM_ID_DUPLICATED"
                )
            seen.add(str(custom_id))
        if comp.get("type") == 2 and len(str(comp.get("label") or "")) > 80:
            raise _invalid("components", "Must be 80 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    if creating and not (
        content or embeds or components or body.get("_files") or body.get("sticker_ids") or body.get("poll")
    ):
        raise _HTTPError(400, "Cannot send an empty message", 50006)


def _validate_modal(data: JSON) -> None:
    """A modal as Discord accepts it: custom_id and title, 1-5 rows, each holding one text input."""
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        raise _invalid("data.custom_id", "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH")
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= 45:
        raise _invalid("data.title", "Must be between 1 and 45 in length.", "BASE_TYPE_BAD_LENGTH")
    rows = data.get("components")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 5:
        raise _invalid("data.components", "Must be between 1 and 5 in length.", "BASE_TYPE_BAD_LENGTH")
    for index, row in enumerate(rows):
        inputs = row.get("components") if isinstance(row, dict) else None
        if row.get("type") != 1 or not isinstance(inputs, list) or len(inputs) != 1:
            raise _invalid(f"data.components.{index}", "A modal row holds exactly one text input.")
        text_input = inputs[0]
        if text_input.get("type") != 4 or text_input.get("style") not in (1, 2):
            raise _invalid(f"data.components.{index}.components.0", "Value must be a text input.")
        label = text_input.get("label")
        if not isinstance(label, str) or not 1 <= len(label) <= 45:
            raise _invalid(f"data.components.{index}.components.0.label", "Must be between 1 and 45 in length.",
                           "BASE_TYPE_BAD_LENGTH")
        if not 1 <= len(str(text_input.get("custom_id", ""))) <= 100:
            raise _invalid(f"data.components.{index}.components.0.custom_id",
                           "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH")
        if not 1 <= int(text_input.get("max_length", 4000)) <= 4000:
            raise _invalid(f"data.components.{index}.components.0.max_length", "Must be between 1 and 4000.")


def _validate_embed(index: int, embed: JSON) -> None:
    limits = {"title": 256, "description": 4096}
    total = 0
    for key, limit in limits.items():
        text = str(embed.get(key) or "")
        total += len(text)
        if len(text) > limit:
            raise _invalid(
                f"embeds.{index}.{key}", f"Must be {limit} or fewer in length.", "BASE_TYPE_MAX_LENGTH"
            )
    fields = embed.get("fields") or []
    if len(fields) > 25:
        raise _invalid(f"embeds.{index}.fields", "Must be 25 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    for j, fld in enumerate(fields):
        name, value = str(fld.get("name") or ""), str(fld.get("value") or "")
        if not name or not value:
            raise _invalid(f"embeds.{index}.fields.{j}", "This field is required", "BASE_TYPE_REQUIRED")
        if len(name) > 256 or len(value) > 1024:
            raise _invalid(f"embeds.{index}.fields.{j}", "Field too long.", "BASE_TYPE_MAX_LENGTH")
        total += len(name) + len(value)
    footer = str((embed.get("footer") or {}).get("text") or "")
    author = str((embed.get("author") or {}).get("name") or "")
    if len(footer) > 2048 or len(author) > 256:
        raise _invalid(f"embeds.{index}", "Footer or author too long.", "BASE_TYPE_MAX_LENGTH")
    if total + len(footer) + len(author) > 6000:
        raise _invalid("embeds", "Embed size exceeds maximum size of 6000", "MAX_EMBED_SIZE_EXCEEDED")
