"""Policy changes without a restart, as Prometheus and Alertmanager do it: `SIGHUP`, `POST /-/reload`, and each
replica noticing that the file changed (a mounted ConfigMap arrives by swapping a symlink, so the file's
content is compared, not its mtime).

A new policy is read and checked whole before anything changes: an invalid one is refused (the log names its
file and line, `/metrics` says `signoff_policy_reload_success 0`) and the old one stays in force. Requests
already made keep what they snapshotted when they were made (their risk, quorum, approvers and freeze); what
reads the policy per operation (new requests, signing rules, alerts, on-call, freezes, retention) reads the new
one from the next operation on. Clusters the new policy adds get their executors; clusters it drops take no new
requests, while the requests already made for them can still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any

import structlog

from bot.settings import Settings
from core.app.clusters import ClusterRegistry
from core.app.metrics import Metrics
from core.domain.policy import Policy
from core.errors import SignoffError

log = structlog.get_logger(__name__)

POLL_S = 3.0  # how often each replica looks at the policy file (tests pass their own)


class PolicyReloader:
    def __init__(self, settings: Settings, metrics: Metrics, registry: ClusterRegistry,
                 closers: list[Callable[[], Any]], adopt: Callable[[Policy], None], *, poll_s: float = POLL_S) -> None:
        self._settings = settings
        self._metrics = metrics
        self._registry = registry
        self._closers = closers
        self._adopt = adopt  # puts a checked policy in force (App.adopt_policy)
        self.poll_s = poll_s
        self._lock = asyncio.Lock()
        self._asked = asyncio.Event()
        self._seen = self._fingerprint()
        self._record(success=True)

    def _fingerprint(self) -> str | None:
        """The file's content hash (None: no file, or it cannot be read right now)."""
        path = self._settings.policy_file()
        if path is None:
            return None
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None

    def _record(self, *, success: bool) -> None:
        metrics = self._metrics
        metrics.set("signoff_policy_reload_success", 1.0 if success else 0.0)
        if success:
            metrics.set("signoff_policy_reload_last_success_timestamp_seconds", time.time())

    def ask(self) -> None:
        """Reload soon, from the watch loop (SIGHUP's handler: nothing to await in a signal handler)."""
        self._asked.set()

    async def reload(self, trigger: str) -> Policy:
        """Read the policy file again and put it in force; raises SignoffError (and changes nothing) when the
        file is invalid."""
        async with self._lock:
            fingerprint = self._fingerprint()
            source = str(self._settings.policy_file() or "built-in")
            try:
                policy = await asyncio.to_thread(self._settings.load_policy)
                await self._add_clusters(policy)
            except SignoffError as exc:
                self._seen = fingerprint  # the same bad file is not reported again at every look
                self._record(success=False)
                log.error("policy.reload_failed", trigger=trigger, source=source,
                          line=getattr(exc, "line", None), error=exc.message)
                raise
            self._adopt(policy)
            self._seen = fingerprint
            self._record(success=True)
            log.info("policy.reloaded", trigger=trigger, source=source, clusters=",".join(policy.clusters),
                     people=len(policy.people))
            return policy

    async def watch(self) -> None:
        """The supervised loop: a SIGHUP, or a file whose content changed, reloads; a failure is logged and
        counted, and the loop goes on."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._asked.wait(), self.poll_s)
            trigger = "signal" if self._asked.is_set() else "file"
            self._asked.clear()
            if trigger == "file" and self._fingerprint() in (self._seen, None):
                continue
            try:
                await self.reload(trigger)
            except SignoffError:
                pass  # logged and counted in reload(); the old policy stays
            except Exception:
                log.exception("policy.reload_crashed", trigger=trigger)

    async def _add_clusters(self, policy: Policy) -> None:
        from bot.fleet import build_member, check_contexts, kubeconfig_contexts

        new = [name for name in policy.clusters if name not in self._registry.names]
        if not new:
            return
        if self._settings.cluster != "sandbox":
            contexts, _, path = kubeconfig_contexts()
            check_contexts(policy, contexts, path)
        for name in new:
            key, cluster, _ = await build_member(self._settings, policy, name, self._closers)
            self._registry.add(key, cluster)
