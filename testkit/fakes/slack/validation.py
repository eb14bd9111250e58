"""Reading what a client sends (form or JSON arguments, the bearer token) and Slack's checks on it:
channels, text and blocks, views; and how a stored message reads back."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from testkit.fakes.slack.records import JSONDict, _ApiError

# ---------------------------------------------------------------------- request parsing helpers


async def _read_args(request: web.Request) -> tuple[JSONDict, str | None]:
    """Merge query string, form and JSON body args the way Slack's API accepts them."""
    args: JSONDict = dict(request.query)
    if not request.can_read_body:
        return args, None
    raw = await request.read()
    if not raw:
        return args, None
    if request.content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return args, "invalid_json"
        if not isinstance(body, dict):
            return args, "invalid_json"
        args.update(body)
    else:  # form-encoded (slack_sdk's params/data, curl, the token field)
        args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return args, None


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac or 0)


def _need_channel(args: JSONDict) -> str:
    channel = args.get("channel")
    if not channel or not isinstance(channel, str):
        raise _ApiError("channel_not_found")
    return channel


def _text_and_blocks(args: JSONDict) -> tuple[str | None, list[JSONDict] | None]:
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        text = str(text)
    if text is not None and len(text) > 40_000:
        raise _ApiError("msg_too_long")
    blocks = args.get("blocks")
    if isinstance(blocks, str):  # form-encoded bodies carry blocks as a JSON string
        try:
            blocks = json.loads(blocks) if blocks else None
        except ValueError:
            raise _ApiError("invalid_blocks_format") from None
    if blocks is not None:
        _validate_blocks(blocks)
    return text, blocks


# Block Kit limits Slack enforces with ``invalid_blocks`` (see Slack's Block Kit reference).
_TEXT_LIMITS = {"section": 3000, "header": 150}


def _plain(obj: Any, limit: int) -> bool:
    return (isinstance(obj, dict) and obj.get("type") == "plain_text" and isinstance(obj.get("text"), str)
            and 0 < len(obj["text"]) <= limit)


def _view_problems(view: Any) -> list[str]:
    """What Slack would refuse in a modal view (its documented limits), as its messages say it."""
    if not isinstance(view, dict):
        return ["[ERROR] missing required field: view"]
    problems: list[str] = []
    if view.get("type") != "modal":
        problems.append("[ERROR] must be 'modal' [json-pointer:/view/type]")
    if not _plain(view.get("title"), 24):
        problems.append("[ERROR] must be a plain_text object of at most 24 characters [json-pointer:/view/title]")
    for key in ("submit", "close"):
        if key in view and not _plain(view[key], 24):
            problems.append(f"[ERROR] must be a plain_text object of at most 24 characters "
                            f"[json-pointer:/view/{key}]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 100:
        problems.append("[ERROR] must provide between 1 and 100 blocks [json-pointer:/view/blocks]")
        return problems
    has_input = False
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"[ERROR] must be an object [json-pointer:/view/blocks/{index}]")
            continue
        if block.get("type") != "input":
            continue
        has_input = True
        element = block.get("element") or {}
        if not _plain(block.get("label"), 2000):
            problems.append(f"[ERROR] must be a plain_text label [json-pointer:/view/blocks/{index}/label]")
        if element.get("type") != "plain_text_input" or not element.get("action_id"):
            problems.append(f"[ERROR] must be a plain_text_input with an action_id "
                            f"[json-pointer:/view/blocks/{index}/element]")
        if not 0 < int(element.get("max_length", 3000)) <= 3000:
            problems.append(f"[ERROR] must be at most 3000 [json-pointer:/view/blocks/{index}/element/max_length]")
    if has_input and "submit" not in view:
        problems.append("[ERROR] a modal with input blocks needs a submit button [json-pointer:/view/submit]")
    return problems


def _validate_blocks(blocks: Any) -> None:
    """Reject what Slack rejects most often, so a rendering bug fails in tests rather than in prod."""
    problems: list[str] = []
    if not isinstance(blocks, list):
        raise _ApiError("invalid_blocks_format")
    if len(blocks) > 50:
        problems.append("no more than 50 items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                problems.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
            if len(str(block_id)) > 255:
                problems.append(f"must be less than 256 characters [json-pointer:{where}/block_id]")
        kind = block["type"]
        text = block.get("text")
        if kind in _TEXT_LIMITS:
            if kind == "section" and text is None and not block.get("fields"):
                problems.append(f"must provide text or fields [json-pointer:{where}]")
            if isinstance(text, dict) and len(str(text.get("text", ""))) > _TEXT_LIMITS[kind]:
                limit = _TEXT_LIMITS[kind]
                problems.append(f"must be at most {limit} characters [json-pointer:{where}/text]")
        if kind == "section" and len(block.get("fields") or []) > 10:
            problems.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
        if kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                problems.append(f"must have 1 to 25 elements [json-pointer:{where}/elements]")
            action_ids: set[str] = set()
            for j, el in enumerate(elements):
                ew = f"{where}/elements/{j}"
                if not isinstance(el, dict):
                    problems.append(f"invalid element [json-pointer:{ew}]")
                    continue
                action_id = el.get("action_id")
                if action_id is not None:
                    if action_id in action_ids:
                        problems.append(f"duplicate action_id [json-pointer:{ew}/action_id]")
                    action_ids.add(action_id)
                if el.get("type") == "button":
                    label = el.get("text")
                    if not isinstance(label, dict) or label.get("type") != "plain_text":
                        problems.append(f"must be a plain_text object [json-pointer:{ew}/text]")
                    elif len(str(label.get("text", ""))) > 75:
                        problems.append(f"must be at most 75 characters [json-pointer:{ew}/text]")
                    if len(str(el.get("value", ""))) > 2000:
                        problems.append(f"must be at most 2000 characters [json-pointer:{ew}/value]")
    if problems:
        raise _ApiError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _shown(message: JSONDict, with_metadata: bool) -> JSONDict:
    """A stored message as a read returns it: `metadata` only when asked for (`include_all_metadata`)."""
    shown = copy.deepcopy(message)
    if not with_metadata:
        shown.pop("metadata", None)
    return shown
