"""The composition root: builds the whole object graph from settings, and takes it down again.

Tests build the very same graph (sandbox cluster, a temporary SQLite file, fake chat
servers), so what they exercise is what production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from adapters.db.database import Database
from bot.calendars import Calendars, build_calendars
from bot.fleet import build_registry
from bot.reload import PolicyReloader
from bot.settings import Settings
from core.app.alert_intake import AlertIntake
from core.app.audit_stream import AuditStream
from core.app.breakglass import BreakglassService, breakglass_handlers
from core.app.clusters import registry_of
from core.app.decisions import DecisionManager
from core.app.delivery import OutboxDispatcher
from core.app.execution import ExecutionService
from core.app.gateways import ChatGateways
from core.app.handlers import ChatCommands
from core.app.history import History
from core.app.incidents import IncidentService
from core.app.learning_handlers import learning_handlers
from core.app.maintenance import Maintenance
from core.app.messagebus import MessageBus, RequestCreated, RequestFinished
from core.app.metrics import Metrics
from core.app.playbooks import PlaybookService
from core.app.service import ApprovalService
from core.app.signals import Signals
from core.app.silences import SilenceKeeper
from core.app.verification import VerificationService, way_back_through
from core.domain.clusters import default_cluster
from core.domain.policy import Policy
from core.ports import Advisor, Clock, Cluster, GatewayRegistry, SystemClock

log = structlog.get_logger(__name__)
GIL_SWITCH_INTERVAL_S = 0.001


@dataclass
class App:
    settings: Settings
    policy: Policy
    db: Database
    cluster: Cluster
    clock: Clock
    signals: Signals
    service: ApprovalService
    execution: ExecutionService
    verification: VerificationService
    maintenance: Maintenance
    dispatcher: OutboxDispatcher
    gateways: GatewayRegistry  # where chat adapters plug their outbox gateway in
    chat: ChatCommands
    incidents: IncidentService
    playbooks: PlaybookService
    alerts: AlertIntake
    bus: MessageBus
    metrics: Metrics
    closers: list[Callable[[], Any]] = field(default_factory=list)
    # Work that start-up does not wait for (building clients that are not needed to listen): run by
    # `warm_up()` once the service answers, and by whoever first needs it otherwise.
    warmers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    sandbox: Any = None  # the in-process sandbox API server when SIGNOFF_CLUSTER=sandbox
    audit_stream: AuditStream | None = None  # with SIGNOFF_AUDIT_WEBHOOK
    calendars: Calendars | None = None  # [oncall.*] schedules and ical freezes, refreshed in the background
    reloader: PolicyReloader | None = None  # with a policy file: SIGHUP, POST /-/reload, a changed file
    # Other objects that read their policy per operation from a `policy`/`_policy` attribute (adopt_policy).
    policy_readers: list[object] = field(default_factory=list)

    @property
    def history(self) -> History:
        return History(self.db)

    def adopt_policy(self, policy: Policy) -> None:
        """Put a checked policy in force (bot/reload.py): each service reads its policy per operation from the
        attribute set here; requests already made keep what they snapshotted."""
        for holder in (self.service, self.execution, self.alerts, self.chat, self.incidents, self.playbooks,
                       self.maintenance, getattr(self.alerts, "_decisions", None),
                       self.calendars.on_call if self.calendars else None, *self.policy_readers):
            for attribute in ("policy", "_policy"):
                if holder is not None and hasattr(holder, attribute):
                    setattr(holder, attribute, policy)
        self.verification.timeout = policy.verify.timeout  # settings the services took as values
        self.verification.max_restarts = policy.verify.max_restarts
        self.verification.stuck_after = policy.verify.stuck_after
        self.maintenance._keep = policy.retention.keep
        self.dispatcher._card_budget = policy.chat.max_new_cards_per_minute
        if policy.clusters:
            registry_of(self.cluster).default = default_cluster(policy.clusters)
        self.policy = policy

    async def settle(self, rounds: int = 200) -> None:
        """Run executions and deliveries until nothing is left to do (console scripts, tests)."""
        for _ in range(rounds):
            sent = await self.dispatcher.run_once()
            ran = await self.execution.run_approved()
            looked = await self.verification.run_due()
            if not ran and not sent and not looked:
                return

    async def warm_up(self) -> None:
        """Run the warmers, one after the other; one that fails is logged (its work is redone on first use)."""
        for warm in self.warmers:
            try:
                await warm()
            except Exception:
                log.exception("bootstrap.warm_up_failed", warmer=getattr(warm, "__qualname__", repr(warm)))

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """The supervised workers: execution, outbox delivery and the expiry sweep."""
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._loop("execution", self.execution.run_approved,
                                             self.signals.execution.wait, 2.0)),
                group.create_task(self.dispatcher.run(0.25)),  # each platform in its own lane
                # Verifying requests (also those a restart found) are looked at when each is due.
                group.create_task(self._loop("verification", self.verification.run_due,
                                             self._until_next_look, 1.0)),
                group.create_task(self._loop("sweep", self.maintenance.sweep, _sleep,
                                             self.settings.sweep_interval_s)),
            ]
            if self.audit_stream is not None:  # its own worker: a webhook that is down never delays chat
                tasks.append(group.create_task(self._loop("audit-stream", self.audit_stream.run_once, _sleep, 1.0)))
            # Each feed is its own supervised loop: a slow or failing feed never touches the request path.
            tasks += [group.create_task(feed.run()) for feed in (self.calendars.feeds if self.calendars else [])]
            if self.reloader is not None:
                tasks.append(group.create_task(self.reloader.watch()))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()

    async def _until_next_look(self, ceiling: float) -> None:
        await self.verification.wait(ceiling)

    @staticmethod
    async def _loop(name: str, work: Callable[[], Any], wait: Callable[[float], Any], interval: float) -> None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad pass must not stop the worker; the next pass retries from the database.
                log.exception("worker.pass_failed", worker=name)
            await wait(interval)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def build_cluster(
    settings: Settings, closers: list[Callable[[], Any]], warmers: list[Callable[[], Awaitable[Any]]] | None = None,
) -> tuple[Cluster, Any]:
    from adapters.kubernetes.executor import KubernetesCluster

    if settings.cluster == "sandbox":
        from adapters.kubernetes.sandbox import SandboxCluster

        sandbox: Any = SandboxCluster(seed=True)
        url = await asyncio.to_thread(sandbox.start)
        closers.append(sandbox.stop)
        cluster = KubernetesCluster.for_url(url, sandbox.token, request_timeout=settings.kube_timeout_s)
        closers.append(cluster.close)
    else:
        cluster = KubernetesCluster.from_kubeconfig(request_timeout=settings.kube_timeout_s)
        closers.append(cluster.close)
        sandbox = None
    if warmers is not None:
        warmers.append(cluster.warm_up)
    return cluster, sandbox


def build_audit_stream(settings: Settings, db: Database, clock: Clock, metrics: Metrics,
                       closers: list[Callable[[], Any]]) -> AuditStream | None:
    if not settings.audit_webhook:
        return None
    from adapters.webhook.cloudevents import CloudEventsWebhook

    token = settings.audit_webhook_token.get_secret_value() if settings.audit_webhook_token else None
    sink = CloudEventsWebhook(settings.audit_webhook, token, timeout_s=settings.chat_timeout_s)
    closers.append(sink.close)
    return AuditStream(store=db, sink=sink, clock=clock, metrics=metrics)


def build_silences(settings: Settings, policy: Policy, db: Database, clock: Clock, metrics: Metrics,
                   closers: list[Callable[[], Any]]) -> SilenceKeeper | None:
    """`[alertmanager] silence = true` with SIGNOFF_ALERTMANAGER_URL: the target's alerts hushed while it runs."""
    if not (policy.alertmanager.silence and settings.alertmanager_url):
        if policy.alertmanager.silence:
            log.warning("silence.not_configured", fix="set SIGNOFF_ALERTMANAGER_URL")
        return None
    from adapters.silences.alertmanager import AlertmanagerSilencer

    silencer = AlertmanagerSilencer(settings.alertmanager_url, timeout_s=settings.chat_timeout_s)
    closers.append(silencer.close)
    return SilenceKeeper(silencer=silencer, store=db, clock=clock, metrics=metrics, window=policy.verify.timeout)


def build_advisor(settings: Settings, closers: list[Callable[[], Any]]) -> Advisor | None:
    if not settings.llm_url:
        return None
    from adapters.llm.advisor import OpenAIAdvisor

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    advisor = OpenAIAdvisor(settings.llm_url, settings.llm_model, key)
    closers.append(advisor.close)
    return advisor


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings, *, clock: Clock | None = None, cluster: Cluster | None = None, upgrade: bool = True,
    check_cluster: bool = True, min_update_interval: float = 1.0, policy: Policy | None = None,
) -> AsyncIterator[App]:
    from_file = policy is None  # a policy handed in (tests, the demo) is not reloaded from a file
    policy = policy or settings.load_policy()
    clock = clock or SystemClock()
    # The event loop, the database thread and the Kubernetes client threads all run Python: with the default 5 ms
    # GIL switch interval, a click's acknowledgement can wait that long at every hand-off between them.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    closers: list[Callable[[], Any]] = []
    warmers: list[Callable[[], Awaitable[Any]]] = []
    signals = Signals()
    # The store wakes the outbox's delivery after each commit that queued a message.
    db = Database(settings.database_url, clock=clock, audit_key=settings.audit_key_bytes,
                  wake_outbox=signals.outbox.set)
    closers.append(db.dispose)
    try:
        if upgrade:
            await db.upgrade()
        else:
            await db.check()
        sandbox = None
        if cluster is None:  # one executor per cluster of the policy (bot/fleet.py)
            cluster, sandbox = await build_registry(settings, policy, closers, warmers)
        cluster = registry_of(cluster)  # every call routed by the operation's cluster (and identity)
        if check_cluster:
            version = await cluster.check()
            log.info("cluster.connected", version=version, mode=settings.cluster)
        metrics = Metrics()
        # Where requests from the API and alerts post their cards, per platform: filled as chat adapters
        # register (ChatGateways), read by everything that announces outside a request's thread.
        places: dict[str, str] = {}
        playbooks = PlaybookService(store=db, policy=policy, clock=clock, places=places)
        incidents = IncidentService(store=db, policy=policy, clock=clock, playbooks=playbooks, places=places)
        # The events between services, all in one place: each handler runs inside the transaction that
        # stores the change (see core.app.transitions), in this order.
        bus = (
            MessageBus()
            .on(RequestCreated, incidents.on_request_created)
            .on(RequestCreated, playbooks.on_request_created)
            .on(RequestFinished, playbooks.on_request_finished)
            .on(RequestFinished, incidents.on_request_finished)
        )
        service = ApprovalService(store=db, policy=policy, cluster=cluster, clock=clock, signals=signals,
                                  metrics=metrics, default_places=places, bus=bus)
        silences = build_silences(settings, policy, db, clock, metrics, closers)
        verification = VerificationService(store=db, cluster=cluster, clock=clock, metrics=metrics, bus=bus,
                                           silences=silences,
                                           way_back=way_back_through(service), timeout=policy.verify.timeout,
                                           max_restarts=policy.verify.max_restarts,
                                           stuck_after=policy.verify.stuck_after)
        execution = ExecutionService(
            store=db, cluster=cluster, clock=clock, verification=verification,
            lease=timedelta(seconds=settings.execution_lease_s), metrics=metrics,
            audit_key=settings.audit_key_bytes, policy=policy, bus=bus,
            silences=silences,
        )
        advisor = build_advisor(settings, closers)
        alerts = AlertIntake(store=db, policy=policy, clock=clock, approvals=service,
                             decisions=DecisionManager(policy=policy, cluster=cluster, advisor=advisor))
        glass = BreakglassService(store=db, policy=policy, clock=clock, signals=signals, approvals=service)
        chat = ChatCommands(service=service, policy=policy, clock=clock,
                            more=learning_handlers(incidents, playbooks))
        chat.handlers.update(breakglass_handlers(glass, clock))
        dispatcher = OutboxDispatcher(store=db, clock=clock, signals=signals, gateways={},
                                      min_update_interval=min_update_interval, metrics=metrics,
                                      max_new_cards_per_minute=policy.chat.max_new_cards_per_minute,
                                      sole_worker=db.sole_worker)
        app = App(
            settings=settings, policy=policy, db=db, cluster=cluster, clock=clock, signals=signals,
            service=service, execution=execution, verification=verification,
            maintenance=Maintenance(store=db, clock=clock, policy=policy, keep=policy.retention.keep, bus=bus,
                                    reviews=glass),
            dispatcher=dispatcher, gateways=ChatGateways(dispatcher, service),
            chat=chat, incidents=incidents, playbooks=playbooks, alerts=alerts, bus=bus, metrics=metrics,
            closers=closers,
            warmers=warmers, policy_readers=[glass, execution.gate],
            sandbox=sandbox,
            audit_stream=build_audit_stream(settings, db, clock, metrics, closers),
        )
        app.calendars = build_calendars(policy, clock, metrics, settings.chat_timeout_s)
        service.freeze_windows = app.calendars.freeze_windows
        service.on_call = app.maintenance.on_call = app.calendars.on_call
        app.maintenance.silences = silences
        if settings.policy_file() is not None and from_file:
            app.reloader = PolicyReloader(settings, metrics, registry_of(cluster), closers, app.adopt_policy)
        yield app
    finally:
        await close_all(closers)


async def close_all(closers: list[Callable[[], Any]]) -> None:
    """Run the closers newest first; one that fails is logged and the rest still run."""
    for close in reversed(closers):
        try:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            # A cluster client that fails to close must not leave the database (or the sandbox) open.
            log.exception("bootstrap.close_failed", closer=getattr(close, "__qualname__", repr(close)))
