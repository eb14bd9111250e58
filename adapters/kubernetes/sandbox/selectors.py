"""Label selectors (`app=api,tier in (a,b)`) and field selectors, as list calls take them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import structlog

from adapters.kubernetes.objects import selector_string
from adapters.kubernetes.sandbox.common import JSON
from adapters.kubernetes.sandbox.errors import _bad_request
from adapters.kubernetes.sandbox.resources import _Resource

log = structlog.get_logger(__name__)


class _Requirement(NamedTuple):
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value in self.values
        if self.operator == "!=":
            return not present or value not in self.values
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQUALITY = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s+\(([^()]*)\)\s*")
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")
_LABEL_VALUE = re.compile(rf"^{_VALUE}$")


def _split_selector(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _parse_label_selector(text: str) -> list[_Requirement]:
    requirements: list[_Requirement] = []
    if not text.strip():
        return requirements
    for part in _split_selector(text):
        if match := _EQUALITY.fullmatch(part):
            operator = "!=" if match.group(3) == "!=" else "="
            requirements.append(_Requirement(match.group(1), operator, frozenset({match.group(4)})))
        elif match := _SET.fullmatch(part):
            values = frozenset(v.strip() for v in match.group(4).split(",") if v.strip())
            requirements.append(_Requirement(match.group(1), match.group(3), values))
        elif match := _EXISTS.fullmatch(part):
            operator = "!" if match.group(1) else "exists"
            requirements.append(_Requirement(match.group(2), operator, frozenset()))
        else:
            raise _bad_request(f"unable to parse requirement: {part.strip()!r} in label selector {text!r}")
    return requirements


_POD_FIELDS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.restartPolicy": ("spec", "restartPolicy"),
    "spec.schedulerName": ("spec", "schedulerName"),
    "spec.serviceAccountName": ("spec", "serviceAccountName"),
    "status.phase": ("status", "phase"),
    "status.podIP": ("status", "podIP"),
}
_COMMON_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


def _field_filter(resource: _Resource, text: str) -> Callable[[JSON], bool]:
    known = _POD_FIELDS if resource.kind == "Pod" else _COMMON_FIELDS
    checks: list[tuple[tuple[str, str], bool, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*([^,]*?)\s*", part)
        if not match:
            raise _bad_request(f"invalid field selector: {part!r}")
        if match.group(1) not in known:
            raise _bad_request(f"field label not supported: {match.group(1)}")
        checks.append((known[match.group(1)], match.group(2) != "!=", match.group(3)))

    def accept(obj: JSON) -> bool:
        for (section, key), equal, value in checks:
            actual = (obj.get(section) or {}).get(key) or ""
            if (actual == value) != equal:
                return False
        return True

    return accept


def _selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return False
    return all(r.matches(labels) for r in _parse_label_selector(selector_string(selector)))


# --------------------------------------------------------------------------------------------
# Small helpers


