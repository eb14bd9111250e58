"""The object store: objects indexed by kind and owner, resourceVersion, uids and generated names."""

from __future__ import annotations

import random
import uuid
from collections import deque
from typing import Any

import structlog

from adapters.kubernetes.objects import pruned
from adapters.kubernetes.sandbox.common import _NAME_ALPHABET, JSON, _controller_uid, _meta, _name, _namespace, _spec

log = structlog.get_logger(__name__)

# How many changes the store remembers for watches (a real API server's watch cache): a watch from an older
# resourceVersion is answered 410 Gone, and the client lists again.
EVENTS_KEPT = 50_000




class _Objects(dict[tuple[str, str, str], JSON]):
    """The store, indexed by kind and by controlling owner: the controllers look objects up by
    both on every write, and scanning everything made each write quadratic in the cluster's size."""

    def __init__(self) -> None:
        super().__init__()
        self.by_kind: dict[str, dict[tuple[str, str, str], JSON]] = {}
        self.by_owner: dict[tuple[str, str], dict[tuple[str, str, str], JSON]] = {}

    def __setitem__(self, key: tuple[str, str, str], obj: JSON) -> None:
        self._unindex(key)
        super().__setitem__(key, obj)
        self.by_kind.setdefault(key[0], {})[key] = obj
        owner = _controller_uid(obj)
        if owner is not None:
            self.by_owner.setdefault((key[0], owner), {})[key] = obj

    def pop(self, key: tuple[str, str, str], default: JSON | None = None) -> JSON | None:  # type: ignore[override]
        self._unindex(key)
        return super().pop(key, default)

    def _unindex(self, key: tuple[str, str, str]) -> None:
        old = self.get(key)
        if old is None:
            return
        self.by_kind.get(key[0], {}).pop(key, None)
        owner = _controller_uid(old)
        if owner is not None:
            self.by_owner.get((key[0], owner), {}).pop(key, None)




class Store:
    def __init__(self, *, rng_seed: int = 0) -> None:
        self.objects = _Objects()
        self.resource_version = 1000
        self.rng = random.Random(rng_seed)
        self.address = "127.0.0.1:0"
        self.ip_counter = 10
        # (resourceVersion, ADDED | MODIFIED | DELETED, object) for every change since `events_floor`.
        self.events: deque[tuple[int, str, JSON]] = deque(maxlen=EVENTS_KEPT)
        self.events_floor = self.resource_version

    # ---- store

    def find(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        return self.objects.get((kind, namespace or "", name))

    def all(self, kind: str, namespace: str | None = None) -> list[JSON]:
        found = [
            obj for (_, ns, _), obj in self.objects.by_kind.get(kind, {}).items()
            if namespace is None or ns == namespace
        ]
        return sorted(found, key=lambda o: (_namespace(o), _name(o)))

    def _next_rv(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def _store(self, obj: JSON) -> JSON:
        """Persist `obj` with a fresh resourceVersion (every write bumps the global counter)."""
        _meta(obj)["resourceVersion"] = self._next_rv()
        key = (obj["kind"], _namespace(obj), _name(obj))
        self._event("MODIFIED" if key in self.objects else "ADDED", obj)
        self.objects[key] = obj
        return obj

    def _event(self, kind: str, obj: JSON) -> None:
        if len(self.events) == self.events.maxlen:
            self.events_floor = self.events[0][0]
        self.events.append((self.resource_version, kind, obj))

    def _save(self, obj: JSON) -> JSON:
        """Persist a controller's change only if something changed, like a real no-op update."""
        current = self.find(obj["kind"], _namespace(obj), _name(obj))
        if current is not None and _same_object(current, obj):
            return current
        return self._store(obj)

    def _remove(self, kind: str, namespace: str, name: str) -> JSON | None:
        removed = self.objects.pop((kind, namespace, name), None)
        if removed is not None:
            gone = {**removed, "metadata": {**_meta(removed), "resourceVersion": self._next_rv()}}
            self._event("DELETED", gone)
        return removed

    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(_NAME_ALPHABET) for _ in range(length))

    def _owned(self, kind: str, owner: JSON) -> list[JSON]:
        uid = owner["metadata"]["uid"]
        namespace = _namespace(owner)
        found = [o for o in self.objects.by_owner.get((kind, uid), {}).values() if _namespace(o) == namespace]
        return sorted(found, key=lambda o: (_namespace(o), _name(o)))

    def _schedulable_node(self) -> str | None:
        candidates = [n for n in self.all("Node") if not _spec(n).get("unschedulable")]
        if not candidates:
            return None
        load: dict[str, int] = {_name(n): 0 for n in candidates}
        for pod in self.all("Pod"):
            node = _spec(pod).get("nodeName")
            if node in load:
                load[node] += 1
        return min(load, key=lambda n: (load[n], n))


def _same_object(a: JSON, b: JSON) -> bool:
    def comparable(obj: JSON) -> Any:
        normal = pruned(obj)  # a fresh structure, so trimming it leaves `obj` alone
        (normal.get("metadata") or {}).pop("resourceVersion", None)
        return normal

    return bool(comparable(a) == comparable(b))

