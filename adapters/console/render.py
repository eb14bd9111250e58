"""Cards and replies as terminal text."""

from __future__ import annotations

from core.chat.cards import ButtonAction, Card


def card_text(card: Card) -> str:
    lines = [f"┌─ {card.title}", f"│ {card.text}"]
    for field in card.fields:
        lines.append(f"│ {field.label}: " + field.value.replace("\n", "\n│   "))
    if card.progress is not None:
        lines.append(f"│ Signatures: {card.progress.bar}")
    if card.buttons:
        lines.append("│ " + "  ".join(f"[{b.label}]" for b in card.buttons) + f"   (console: {_button_hint(card)})")
    lines.append(f"└─ {card.footer}")
    return "\n".join(lines)


def card_update_text(card: Card) -> str:
    if card.state.final:
        return "↻ card updated:\n" + card_text(card)
    progress = f" · {card.progress.bar}" if card.progress is not None else ""
    # While verifying, the rollout's own progress is what changes.
    effect = next((f" · {f.value}" for f in card.fields if f.label == "Effect"), "")
    return f"↻ {card.key} card: {card.state}{effect or progress}"


def thread_text(key: str, text: str) -> str:
    prefix = f"    ↳ {key} │ "
    pad = " " * (len(prefix) - 2) + "│ "
    lines = text.splitlines() or [""]
    return "\n".join([prefix + lines[0], *(pad + line for line in lines[1:])])


def private_text(person: str, text: str) -> str:
    lines = text.splitlines() or [""]
    head = f"  (only {person} sees this) "
    return "\n".join([head + lines[0], *("  " + " " * (len(head) - 2) + line for line in lines[1:])])


def _button_hint(card: Card) -> str:
    actions = {b.action for b in card.buttons}
    if actions == {ButtonAction.rate}:
        incident = card.buttons[0].value.partition(":")[0]
        return f"`rate {incident} <1-5>`"
    if actions == {ButtonAction.rerequest}:
        return f"`rerequest {card.key}` (Request again)"
    if ButtonAction.countersign in actions:  # a break glass review
        return f"`countersign {card.key}` / `dispute {card.key} reason=\"…\"`"
    return f"`approve {card.key} [comment=\"…\"]` / `reject {card.key}`"
