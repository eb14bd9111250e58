"""What is read of a target before a request runs (core/app/clusters.py `target_facts`): the target alone where
the cluster can read it so, else everything `inspect` reads, never from a cache."""

from __future__ import annotations

from collections.abc import Mapping

from core.app.clusters import ClusterRegistry, TargetReading, target_facts
from core.domain.cluster import ClusterResult, TargetFacts
from core.domain.operations import Operation, parse_operation
from core.domain.verify import Progress

RESTART = parse_operation("rollout restart deployment/api -n prod")


class InspectOnly:
    """A cluster with the port's methods only (a test's stand-in, another adapter)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    async def check(self) -> str:
        return "v1"

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        self.asked.append(("inspect", fresh))
        return TargetFacts(exists=True, replicas=3, pods=("api-1", "api-2", "api-3"))

    async def apply(self, op: Operation, *, dry_run: bool, stamp: Mapping[str, str] | None = None) -> ClusterResult:
        raise AssertionError("nothing is written")

    async def observe(self, op: Operation, since: ClusterResult, *, reasons: bool = False) -> Progress:
        raise AssertionError("nothing is observed")


class ReadsAlone(InspectOnly):
    async def read_target(self, op: Operation) -> TargetFacts:
        self.asked.append(("read_target", True))
        return TargetFacts(exists=True, replicas=3)


async def test_a_cluster_that_reads_the_target_alone_is_asked_for_that_only() -> None:
    cluster = ReadsAlone()
    assert isinstance(cluster, TargetReading)
    assert (await target_facts(cluster, RESTART)).pods == ()
    assert cluster.asked == [("read_target", True)]


async def test_any_other_cluster_reads_everything_fresh() -> None:
    cluster = InspectOnly()
    assert not isinstance(cluster, TargetReading)
    assert (await target_facts(cluster, RESTART)).replicas == 3
    assert cluster.asked == [("inspect", True)]


async def test_the_registry_routes_the_read_to_the_operations_cluster_either_way() -> None:
    alone, other = ReadsAlone(), InspectOnly()
    registry = ClusterRegistry({"eu": alone, "us": other}, default="eu")
    await target_facts(registry, RESTART)
    await target_facts(registry, RESTART.model_copy(update={"cluster": "us"}))
    assert (alone.asked, other.asked) == ([("read_target", True)], [("inspect", True)])
