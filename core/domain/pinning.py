"""What was signed is what runs: the target's observed state, pinned when the request is made.

A request carries a `Pin` of its target as it was read when the request was made: a fingerprint of the pod
template (for a rollback, also the revision it would go back to). Before anything runs, the target is read
again; when its pin differs, the request ends `stale` and nothing runs.

Left out of the fingerprint, because they change nothing that was reviewed:
- replicas (an autoscaler changes them all the time), status, `resourceVersion`, `generation`,
  `managedFields` (the adapter passes the pod template only);
- the `kubectl.kubernetes.io/restartedAt` annotation: another restart changes nothing that runs, and must
  not make a pending scale stale.

What is pinned, by target:
- deployment, statefulset, daemonset (restart, scale, rollback): the pod template; a rollback also pins the
  ReplicaSet `rollout undo` goes back to (its revision and name) and runs to exactly that one;
- pod (delete): its uid (a pod of a StatefulSet recreated under the same name is not the pod that was signed);
- node (cordon, uncordon, drain): nothing. `unschedulable` is the change itself, and the pods a drain evicts
  change all the time; the dry run at execution says what a drain would do then.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.domain.events import canonical_json

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class Pin(BaseModel):
    """The target as the signers saw it."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    # (container, image) of the pod template, to say what changed: `image (api): v2 → v9`.
    images: tuple[tuple[str, str], ...] = ()
    # A rollback: the ReplicaSet `rollout undo` goes back to.
    revision: int | None = None
    revision_name: str | None = None
    # A pod: its uid.
    uid: str | None = None

    def digest_part(self) -> dict[str, Any]:
        """What the signature digest covers of the pin."""
        body: dict[str, Any] = {"fingerprint": self.fingerprint}
        if self.revision is not None:
            body["revision"] = self.revision
            body["revision_name"] = self.revision_name
        return body


class Observed(BaseModel):
    """What the adapter read of a target for its pin (pure data: the pod template as JSON)."""

    model_config = ConfigDict(frozen=True)

    template: dict[str, Any] | None = None
    revision: int | None = None
    revision_name: str | None = None
    uid: str | None = None
    # Who last changed the object, as its managedFields tell: the manager of its most recent Update.
    changed_by: str | None = None
    changed_at: str | None = None


def template_fingerprint(template: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a pod template, without the restartedAt annotation."""
    body = copy.deepcopy(template)
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(RESTARTED_AT, None)
            if not annotations:
                metadata.pop("annotations")
        for noise in ("creationTimestamp", "resourceVersion", "generation", "managedFields", "uid"):
            metadata.pop(noise, None)
        if not metadata:
            body.pop("metadata")
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def images_of(template: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    spec = template.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return tuple((str(c.get("name")), str(c.get("image"))) for c in containers if isinstance(c, dict))


def pin_of(observed: Observed | None) -> Pin | None:
    """The pin of what was read; None when nothing of the target is pinned (a node, or nothing read)."""
    if observed is None:
        return None
    if observed.template is not None:
        fingerprint = template_fingerprint(observed.template)
        if observed.revision is not None:
            fingerprint = hashlib.sha256(
                f"{fingerprint}:{observed.revision}:{observed.revision_name}".encode()).hexdigest()
        return Pin(fingerprint=fingerprint, images=images_of(observed.template), revision=observed.revision,
                   revision_name=observed.revision_name)
    if observed.uid is not None:
        return Pin(fingerprint=hashlib.sha256(f"uid:{observed.uid}".encode()).hexdigest(), uid=observed.uid)
    return None


def drift(signed: Pin, now: Pin | None, *, observed: Observed | None = None) -> str | None:
    """What changed since the request was made, as a sentence; None when nothing that is pinned did."""
    if now is not None and now.fingerprint == signed.fingerprint:
        return None
    parts: list[str] = []
    if now is None:
        parts.append("the target can no longer be read as it was" if signed.uid is None else
                     f"pod uid {signed.uid} is gone")
    else:
        if signed.uid is not None and now.uid != signed.uid:
            parts.append(f"the pod was replaced (uid {signed.uid} → {now.uid})")
        old, new = dict(signed.images), dict(now.images)
        for name in sorted(old.keys() | new.keys()):
            before, after = old.get(name, "none"), new.get(name, "none")
            if before != after:
                parts.append(f"image ({name}): {before} → {after}")
        if signed.revision is not None and (now.revision, now.revision_name) != (signed.revision,
                                                                                  signed.revision_name):
            to = (f"revision {now.revision} ({now.revision_name})" if now.revision is not None
                  else "no previous revision")
            parts.append(f"rollback target: revision {signed.revision} ({signed.revision_name}) → {to}")
        if not parts:
            parts.append("the pod template changed (not its images)")
    text = "; ".join(parts)
    if observed is not None and observed.changed_by:
        when = f" at {observed.changed_at}" if observed.changed_at else ""
        text += f" (changed by {observed.changed_by}{when})"
    return text


def target_key(cluster: str | None, kind: str, namespace: str | None, name: str) -> str:
    """One target for the one-operation-at-a-time queue: cluster + kind of object + namespace + name."""
    return f"{cluster or ''}/{kind}/{namespace or ''}/{name}"

