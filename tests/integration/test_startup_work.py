"""What `signoff run` leaves until after it listens (start-up time), and that it is still done."""

from __future__ import annotations

from structlog.testing import capture_logs

from adapters.kubernetes.executor import KubernetesCluster
from adapters.kubernetes.sandbox import SandboxCluster
from bot.bootstrap import bootstrap
from core.domain.operations import RestartOp
from core.domain.policy import Policy
from testkit.support import make_settings


async def test_the_start_up_check_does_not_build_the_api_clients_and_warm_up_does() -> None:
    sandbox = SandboxCluster(seed=True)
    url = sandbox.start()
    cluster = KubernetesCluster.for_url(url, sandbox.token)
    try:
        assert await cluster.check()
        assert cluster._apis is None  # the ~300 models of the Apps and Core APIs are not imported yet
        await cluster.warm_up()
        assert cluster._apis is not None
    finally:
        cluster.close()
        sandbox.stop()


async def test_a_cold_cluster_still_answers_its_first_inspection() -> None:
    sandbox = SandboxCluster(seed=True)
    url = sandbox.start()
    cluster = KubernetesCluster.for_url(url, sandbox.token)
    try:
        facts = await cluster.inspect(RestartOp(target="deployment", name="api", namespace="prod"))
        assert facts.exists and facts.replicas == 3 and len(facts.pods) == 3
    finally:
        cluster.close()
        sandbox.stop()


async def test_warm_up_runs_every_warmer_and_logs_one_that_fails(sqlite_database_url: str) -> None:
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("cannot warm")

    async def fine() -> None:
        ran.append("fine")

    async with bootstrap(make_settings(sqlite_database_url), cluster=object(), check_cluster=False,  # type: ignore[arg-type]
                         policy=Policy()) as app:
        app.warmers[:] = [broken, fine]
        with capture_logs() as logs:
            await app.warm_up()
    assert ran == ["broken", "fine"]
    assert [entry["event"] for entry in logs] == ["bootstrap.warm_up_failed"]
