"""The one placeholder-template engine: `{label}` filled from an alert's labels.

Playbook templates (`rollout restart deployment/{deployment} -n {namespace}`) and the policy
file's `[[rules]]` actions and reasons are all written this way. A value that goes into an
action must be one plain Kubernetes name, so an alert label can never smuggle a flag, a second
namespace or a shell character into an action; the operation parser checks the result again.

Deliberately not `str.format`, which would also evaluate `{0.__class__}`-style fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PLACEHOLDER", "fill_template", "fill_text", "placeholder", "plain_name"]

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# One RFC 1123 name: no spaces (`api -n kube-system`), no slashes, no upper case, no shell characters.
# Used with fullmatch: `$` would also match before a trailing newline.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
MAX_NAME = 253


def plain_name(value: str | None) -> str | None:
    """The value when it is one plain Kubernetes name, else None."""
    if value is None or len(value) > MAX_NAME or not _NAME.fullmatch(value):
        return None
    return value


def placeholder(label: str) -> str:
    """How a label is written in a template: `{deployment}`."""
    return "{" + label + "}"


def fill_template(template: str, labels: Mapping[str, str]) -> str | None:
    """Every placeholder filled; None when a label is missing or is not a plain name."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = plain_name(labels.get(match[1]))
        if found is None:
            missing = True
            return ""
        return found

    filled = PLACEHOLDER.sub(value, template)
    return None if missing else filled


def fill_text(text: str, labels: Mapping[str, str]) -> str:
    """For a sentence a person reads: placeholders that cannot be filled are left as written."""
    return PLACEHOLDER.sub(lambda m: plain_name(labels.get(m[1])) or m[0], text)
