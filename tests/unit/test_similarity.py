"""The playbook similarity on a hand-labelled set of kube-prometheus alert pairs, and its normalisation.

Each pair is (the alert a playbook was learnt from, a new alert, whether a person would call them the
same incident). Triggers are built the way the decision service builds them: the alert name, the
identifying labels (`workload_labels`) and the description.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.domain.playbooks import Trigger
from core.domain.similarity import (
    IDENTIFYING_LABELS,
    normalise_job,
    normalise_label,
    normalise_pod,
    similarity,
    symptom_similarity,
    symptom_tokens,
    workload_labels,
    workload_similarity,
)

THRESHOLD = 0.85  # policy `[playbooks] similarity` default


@dataclass(frozen=True)
class Alert:
    name: str
    labels: dict[str, str]
    symptom: str


KSM_POD = "kube-prometheus-stack-kube-state-metrics-6d8f9c7b5-h4x7k"
KSM_POD_AFTER_RESTART = "kube-prometheus-stack-kube-state-metrics-6d8f9c7b5-w9zqp"


def ksm(*, instance: str = "10.244.1.17:8080", pod: str = KSM_POD, severity: str = "warning",
        prometheus: str = "monitoring/kube-prometheus-stack-prometheus", **labels: str) -> dict[str, str]:
    """Labels of an alert on a kube-state-metrics series, as kube-prometheus-stack delivers them."""
    return {
        "container": "kube-state-metrics",
        "endpoint": "http",
        "instance": instance,
        "job": "kube-state-metrics",
        "pod": pod,
        "prometheus": prometheus,
        "service": "kube-prometheus-stack-kube-state-metrics",
        "severity": severity,
        **labels,
    }


def crashloop(namespace: str, pod: str, container: str, *, severity: str = "warning", uid: str = "5f1c0c8a",
              instance: str = "10.244.1.17:8080", old_text: bool = False) -> Alert:
    labels = ksm(severity=severity, instance=instance, namespace=namespace, reason="CrashLoopBackOff", uid=uid)
    labels.update(pod=pod, container=container)
    text = (f"Pod {namespace}/{pod} ({container}) is restarting 1.05 times / 10 minutes." if old_text
            else f'Pod {namespace}/{pod} ({container}) is in waiting state (reason: "CrashLoopBackOff").')
    return Alert("KubePodCrashLooping", labels, text)


def pod_not_ready(namespace: str, pod: str, *, minutes: int = 15, severity: str = "warning") -> Alert:
    return Alert("KubePodNotReady", {"namespace": namespace, "pod": pod, "severity": severity},
                 f"Pod {namespace}/{pod} has been in a non-ready state for longer than {minutes} minutes.")


def container_waiting(namespace: str, pod: str, container: str, *, reason: str = "ContainerCreating") -> Alert:
    return Alert("KubeContainerWaiting",
                 {"namespace": namespace, "pod": pod, "container": container, "severity": "warning"},
                 f"pod/{pod} in namespace {namespace} on container {container} has been in waiting state "
                 f"for longer than 1 hour. (reason: \"{reason}\")")


def deploy_mismatch(namespace: str, deployment: str, *, severity: str = "warning", instance: str = "10.244.1.17:8080",
                    ksm_pod: str = KSM_POD, cluster: str | None = None) -> Alert:
    labels = ksm(severity=severity, instance=instance, pod=ksm_pod, namespace=namespace, deployment=deployment)
    if cluster:
        labels["cluster"] = cluster
    return Alert("KubeDeploymentReplicasMismatch", labels,
                 f"Deployment {namespace}/{deployment} has not matched the expected number of replicas for "
                 "longer than 15 minutes. This indicates that cluster infrastructure is unable to start or "
                 "restart the necessary components.")


def rollout_stuck(namespace: str, deployment: str, *, minutes: int = 15, severity: str = "warning") -> Alert:
    return Alert("KubeDeploymentRolloutStuck", ksm(severity=severity, namespace=namespace, deployment=deployment),
                 f"Rollout of deployment {namespace}/{deployment} is not progressing for longer than "
                 f"{minutes} minutes.")


def sts_mismatch(namespace: str, statefulset: str, *, severity: str = "warning") -> Alert:
    return Alert("KubeStatefulSetReplicasMismatch", ksm(severity=severity, namespace=namespace,
                                                         statefulset=statefulset),
                 f"StatefulSet {namespace}/{statefulset} has not matched the expected number of replicas for "
                 "longer than 15 minutes.")


def hpa_maxed(namespace: str, hpa: str, *, minutes: int = 15, instance: str = "10.244.1.17:8080") -> Alert:
    return Alert("KubeHpaMaxedOut", ksm(instance=instance, namespace=namespace, horizontalpodautoscaler=hpa),
                 f"HPA {namespace}/{hpa} has been running at max replicas for longer than {minutes} minutes.")


def cpu_throttling(namespace: str, pod: str, container: str, percent: str, *, cluster: str | None = None) -> Alert:
    labels = {"namespace": namespace, "pod": pod, "container": container, "severity": "info",
              "prometheus": "monitoring/kube-prometheus-stack-prometheus"}
    if cluster:
        labels["cluster"] = cluster
    return Alert("CPUThrottlingHigh", labels,
                 f"{percent} throttling of CPU in namespace {namespace} for container {container} in pod {pod}.")


def node_not_ready(node: str, *, minutes: int = 15, instance: str = "10.244.1.17:8080",
                   ksm_pod: str = KSM_POD, name: str = "KubeNodeNotReady") -> Alert:
    labels = ksm(instance=instance, pod=ksm_pod, namespace="monitoring", node=node, condition="Ready",
                 status="true")
    return Alert(name, labels, f"{node} has been unready for more than {minutes} minutes.")


def ds_rollout_stuck(namespace: str, daemonset: str, *, replica: str = "prometheus-kube-prometheus-stack-0") -> Alert:
    labels = ksm(namespace=namespace, daemonset=daemonset, prometheus_replica=replica)
    return Alert("KubeDaemonSetRolloutStuck", labels,
                 f"DaemonSet {namespace}/{daemonset} has not finished or progressed for at least 15 minutes.")


def job_failed(namespace: str, job: str, *, name: str = "KubeJobFailed") -> Alert:
    return Alert(name, ksm(namespace=namespace, job_name=job),
                 f"Job {namespace}/{job} failed to complete. Removing failed job after investigation "
                 "should clear this alert.")


def target_down(namespace: str, service: str, job: str, percent: str) -> Alert:
    return Alert("TargetDown", {"job": job, "namespace": namespace, "service": service, "severity": "warning",
                                "prometheus": "monitoring/kube-prometheus-stack-prometheus"},
                 f"{percent} of the {job}/{service} targets in {namespace} namespace are down.")


def pvc_filling(namespace: str, pvc: str, percent: str) -> Alert:
    return Alert("KubePersistentVolumeFillingUp", ksm(namespace=namespace, persistentvolumeclaim=pvc,
                                                      severity="critical"),
                 f"The PersistentVolume claimed by {pvc} in Namespace {namespace} is only {percent} free.")


def api_down(prometheus: str = "monitoring/kube-prometheus-stack-prometheus") -> Alert:
    return Alert("KubeAPIDown", {"severity": "critical", "prometheus": prometheus},
                 "KubeAPI has disappeared from Prometheus target discovery.")


# (id, the playbook's source alert, the new alert, similar?)
PAIRS: list[tuple[str, Alert, Alert, bool]] = [
    # ---- hard positives: the same problem on the same workload, firing again ----
    ("crashloop: other pod hash", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     crashloop("prod", "api-5c4b9-abcde", "api", uid="a81e77c2"), True),
    ("crashloop: other pod, severity, instance", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     crashloop("prod", "api-7d9f8b6c5-q8w2r", "api", severity="critical", instance="10.244.3.4:8080"), True),
    ("crashloop: old vs new description", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api", old_text=True),
     crashloop("prod", "api-6b5d4c8f7-zz9kp", "api"), True),
    ("crashloop: daemonset pod", crashloop("logging", "fluent-bit-x2x4z", "fluent-bit"),
     crashloop("logging", "fluent-bit-7kq9w", "fluent-bit"), True),
    ("crashloop: statefulset ordinal", crashloop("data", "postgres-0", "postgres"),
     crashloop("data", "postgres-2", "postgres"), True),
    ("crashloop: deployment name with a dash", crashloop("prod", "payments-api-6b7c8d9f5-q8w2r", "server"),
     crashloop("prod", "payments-api-55f6d7c8b9-m2n4p", "server"), True),
    ("pod not ready: other pod, other minutes", pod_not_ready("prod", "api-7d9f8b6c5-x2x4z"),
     pod_not_ready("prod", "api-5c4b9-abcde", minutes=30), True),
    ("pod not ready: statefulset pods", pod_not_ready("data", "redis-1"), pod_not_ready("data", "redis-0"), True),
    ("container waiting: other pod", container_waiting("prod", "worker-59b8f7d6c4-7xk2p", "worker"),
     container_waiting("prod", "worker-6c8d9f7b5-p4r2t", "worker"), True),
    ("deployment mismatch: ksm restarted, severity",
     deploy_mismatch("prod", "api"),
     deploy_mismatch("prod", "api", severity="critical", instance="10.244.2.9:8080", ksm_pod=KSM_POD_AFTER_RESTART),
     True),
    ("deployment mismatch: same cluster label", deploy_mismatch("prod", "api", cluster="eu-prod-1"),
     deploy_mismatch("prod", "api", cluster="eu-prod-1", instance="10.244.2.9:8080"), True),
    ("rollout stuck: other minutes, severity", rollout_stuck("prod", "checkout"),
     rollout_stuck("prod", "checkout", minutes=30, severity="critical"), True),
    ("sts mismatch: other severity", sts_mismatch("data", "postgres"),
     sts_mismatch("data", "postgres", severity="critical"), True),
    ("hpa maxed: other minutes and instance", hpa_maxed("prod", "api"),
     hpa_maxed("prod", "api", minutes=45, instance="10.244.2.9:8080"), True),
    ("cpu throttling: other pod, other percent", cpu_throttling("prod", "api-7d9f8b6c5-x2x4z", "api", "80.5%"),
     cpu_throttling("prod", "api-5c4b9-abcde", "api", "93.17%"), True),
    ("cpu throttling: sidecar of the same workload", cpu_throttling("prod", "api-7d9f8b6c5-x2x4z", "api", "62%"),
     cpu_throttling("prod", "api-7d9f8b6c5-q8w2r", "istio-proxy", "71%"), True),
    ("node not ready: same node, ksm moved", node_not_ready("ip-10-0-1-23.ec2.internal"),
     node_not_ready("ip-10-0-1-23.ec2.internal", minutes=20, instance="10.244.5.2:8080",
                    ksm_pod=KSM_POD_AFTER_RESTART), True),
    ("daemonset stuck: other prometheus replica", ds_rollout_stuck("monitoring", "node-exporter"),
     ds_rollout_stuck("monitoring", "node-exporter", replica="prometheus-kube-prometheus-stack-1"), True),
    ("job failed: next cronjob run", job_failed("ops", "nightly-backup-28391234"),
     job_failed("ops", "nightly-backup-28392674"), True),
    ("target down: other percent", target_down("monitoring", "node-exporter", "node-exporter", "33.33%"),
     target_down("monitoring", "node-exporter", "node-exporter", "100%"), True),
    ("pvc filling: other percent", pvc_filling("data", "data-postgres-0", "3.2%"),
     pvc_filling("data", "data-postgres-0", "1.1%"), True),
    ("cluster-wide alert", api_down(), api_down(prometheus="monitoring/prometheus-k8s"), True),
    ("crashloop: other uid and reason text", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api", uid="1"),
     Alert("KubePodCrashLooping", {**crashloop("prod", "api-5c4b9-abcde", "api").labels, "uid": "2"},
           "Pod prod/api-5c4b9-abcde (api) is in waiting state."), True),
    # ---- hard negatives: same alert, another namespace / workload / cluster ----
    ("crashloop: staging vs prod", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     crashloop("staging", "api-7d9f8b6c5-x2x4z", "api"), False),
    ("crashloop: other deployment, same namespace", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     crashloop("prod", "web-6b7c8d9f5-q8w2r", "api"), False),
    ("crashloop: name prefix is not the workload", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     crashloop("prod", "api-gateway-6b7c8d9f5-q8w2r", "api"), False),
    ("crashloop: statefulset vs its exporter", crashloop("data", "postgres-0", "postgres"),
     crashloop("data", "postgres-exporter-7f8d9c6b5-k2l4m", "postgres"), False),
    ("pod not ready: staging vs prod", pod_not_ready("prod", "api-7d9f8b6c5-x2x4z"),
     pod_not_ready("staging", "api-5c4b9-abcde"), False),
    ("container waiting: other deployment", container_waiting("prod", "worker-59b8f7d6c4-7xk2p", "worker"),
     container_waiting("prod", "scheduler-59b8f7d6c4-7xk2p", "worker"), False),
    ("deployment mismatch: other deployment", deploy_mismatch("prod", "api"), deploy_mismatch("prod", "web"), False),
    ("deployment mismatch: other namespace", deploy_mismatch("prod", "api"), deploy_mismatch("payments", "api"),
     False),
    ("deployment mismatch: other cluster", deploy_mismatch("prod", "api", cluster="eu-prod-1"),
     deploy_mismatch("prod", "api", cluster="eu-staging-1"), False),
    ("rollout stuck: other deployment", rollout_stuck("prod", "checkout"), rollout_stuck("prod", "cart"), False),
    ("sts mismatch: other statefulset", sts_mismatch("data", "postgres"), sts_mismatch("data", "redis"), False),
    ("sts mismatch: staging vs prod", sts_mismatch("data", "postgres"), sts_mismatch("data-staging", "postgres"),
     False),
    ("hpa maxed: other hpa", hpa_maxed("prod", "api"), hpa_maxed("prod", "worker"), False),
    ("hpa maxed: other namespace", hpa_maxed("prod", "api"), hpa_maxed("staging", "api"), False),
    ("cpu throttling: other deployment", cpu_throttling("prod", "api-7d9f8b6c5-x2x4z", "api", "80%"),
     cpu_throttling("prod", "web-7d9f8b6c5-x2x4z", "api", "80%"), False),
    ("cpu throttling: other cluster", cpu_throttling("prod", "api-7d9f8b6c5-x2x4z", "api", "80%", cluster="a"),
     cpu_throttling("prod", "api-7d9f8b6c5-x2x4z", "api", "80%", cluster="b"), False),
    ("node not ready: other node", node_not_ready("ip-10-0-1-23.ec2.internal"),
     node_not_ready("ip-10-0-2-41.ec2.internal"), False),
    ("daemonset stuck: other daemonset", ds_rollout_stuck("monitoring", "node-exporter"),
     ds_rollout_stuck("monitoring", "promtail"), False),
    ("job failed: other cronjob", job_failed("ops", "nightly-backup-28391234"),
     job_failed("ops", "nightly-report-28391234"), False),
    ("target down: other service", target_down("monitoring", "node-exporter", "node-exporter", "100%"),
     target_down("monitoring", "kube-state-metrics", "kube-state-metrics", "100%"), False),
    ("target down: other namespace", target_down("monitoring", "node-exporter", "node-exporter", "100%"),
     target_down("monitoring-staging", "node-exporter", "node-exporter", "100%"), False),
    ("pvc filling: other claim", pvc_filling("data", "data-postgres-0", "3%"),
     pvc_filling("data", "data-redis-0", "3%"), False),
    # ---- different alerts on the same workload: never the same playbook ----
    ("crashloop vs pod not ready", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     pod_not_ready("prod", "api-7d9f8b6c5-x2x4z"), False),
    ("crashloop vs container waiting", crashloop("prod", "api-7d9f8b6c5-x2x4z", "api"),
     container_waiting("prod", "api-7d9f8b6c5-x2x4z", "api", reason="CrashLoopBackOff"), False),
    ("replicas mismatch vs rollout stuck", deploy_mismatch("prod", "checkout"), rollout_stuck("prod", "checkout"),
     False),
    ("cpu throttling vs hpa maxed", cpu_throttling("prod", "api-7d9f8b6c5-x2x4z", "api", "80%"),
     hpa_maxed("prod", "api"), False),
    ("node not ready vs unreachable", node_not_ready("node-1"), node_not_ready("node-1", name="KubeNodeUnreachable"),
     False),
    ("job failed vs not completed", job_failed("ops", "nightly-backup-28391234"),
     job_failed("ops", "nightly-backup-28391234", name="KubeJobNotCompleted"), False),
]


def trigger_of(alert: Alert) -> Trigger:
    return Trigger(alert_name=alert.name, labels=workload_labels(alert.labels), symptom=alert.symptom)


def score(source: Alert, new: Alert) -> float:
    return similarity(new.name, new.labels, new.symptom, trigger_of(source))


def test_the_labelled_set_is_big_and_balanced_enough() -> None:
    assert len(PAIRS) >= 40
    assert len({pair[0] for pair in PAIRS}) == len(PAIRS)
    positives = sum(1 for *_, similar in PAIRS if similar)
    assert positives >= 15 and len(PAIRS) - positives >= 15


def confusion(threshold: float = THRESHOLD) -> tuple[int, int, int, int, list[str]]:
    tp = fp = tn = fn = 0
    wrong: list[str] = []
    for name, source, new, similar in PAIRS:
        value = score(source, new)
        predicted = value >= threshold
        if predicted and similar:
            tp += 1
        elif predicted:
            fp += 1
            wrong.append(f"false positive {value:.3f}: {name}")
        elif similar:
            fn += 1
            wrong.append(f"false negative {value:.3f}: {name}")
        else:
            tn += 1
    return tp, fp, tn, fn, wrong


def test_precision_and_recall_at_the_default_threshold() -> None:
    tp, fp, tn, fn, wrong = confusion()
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    report = f"tp={tp} fp={fp} tn={tn} fn={fn} precision={precision:.3f} recall={recall:.3f}\n" + "\n".join(wrong)
    print(report)
    assert precision >= 0.95, report
    assert recall >= 0.8, report


@pytest.mark.parametrize(("name", "source", "new", "similar"), PAIRS, ids=[p[0] for p in PAIRS])
def test_each_pair_on_both_sides_of_the_threshold_with_margin(name: str, source: Alert, new: Alert,
                                                              similar: bool) -> None:
    # Not only the aggregate: every labelled pair lands on its side, and a raw-label trigger agrees
    # with a normalised one (a trigger may have been stored before normalisation existed).
    value = score(source, new)
    raw = similarity(new.name, new.labels, new.symptom, Trigger(alert_name=source.name, labels=source.labels,
                                                                 symptom=source.symptom))
    assert 0.0 <= value <= 1.0
    assert (value >= THRESHOLD) is similar, value
    assert (raw >= THRESHOLD) is similar, raw
    if not similar:
        assert value <= 0.8, "a negative should sit clearly below the threshold"


def test_a_different_alert_name_scores_at_most_one_half() -> None:
    for _, source, new, _ in PAIRS:
        if source.name != new.name:
            assert score(source, new) <= 0.5
    crash = crashloop("prod", "api-7d9f8b6c5-x2x4z", "api")
    assert similarity("KubePodNotReady", crash.labels, crash.symptom, trigger_of(crash)) <= 0.5


def test_identical_alert_scores_one_and_symmetry_of_components() -> None:
    crash = crashloop("prod", "api-7d9f8b6c5-x2x4z", "api")
    assert score(crash, crash) == 1.0
    other = crashloop("prod", "api-5c4b9-abcde", "api")
    assert workload_similarity(crash.labels, other.labels) == workload_similarity(other.labels, crash.labels) == 1.0


def test_same_workload_is_similar_whatever_the_symptom_says() -> None:
    crash = crashloop("prod", "api-7d9f8b6c5-x2x4z", "api")
    assert similarity(crash.name, crash.labels, "", trigger_of(crash)) == 0.9
    assert similarity(crash.name, crash.labels, "completely unrelated words here", trigger_of(crash)) == 0.9


def test_anchor_disagreement_zeroes_the_workload_component() -> None:
    assert workload_similarity({"namespace": "prod", "deployment": "api"},
                               {"namespace": "prod", "deployment": "web"}) == 0.0
    assert workload_similarity({"namespace": "prod", "deployment": "api"},
                               {"namespace": "staging", "deployment": "api"}) == 0.0
    assert workload_similarity({"cluster": "a", "namespace": "prod"}, {"cluster": "b", "namespace": "prod"}) == 0.0


def test_soft_labels_and_one_sided_labels_only_lower_the_score() -> None:
    base = {"namespace": "prod", "pod": "api-7d9f8b6c5-x2x4z", "container": "api"}
    assert workload_similarity(base, {**base, "container": "istio-proxy"}) == pytest.approx(6 / 7)
    assert workload_similarity(base, {"namespace": "prod", "pod": "api-5c4b9-abcde"}) == pytest.approx(6 / 7)
    # A workload label on one side only is a weighted disagreement, not a veto.
    assert workload_similarity({"namespace": "prod", "horizontalpodautoscaler": "api"},
                               {"namespace": "prod", "horizontalpodautoscaler": "api", "deployment": "api"}
                               ) == pytest.approx(6 / 9)


def test_service_is_an_anchor_only_when_no_workload_is_named() -> None:
    # TargetDown: the service is the target.
    assert workload_similarity({"namespace": "monitoring", "service": "node-exporter"},
                               {"namespace": "monitoring", "service": "kube-state-metrics"}) == 0.0
    # kube-state-metrics alerts: the service is the exporter's; another release name only lowers the score.
    assert workload_similarity({"namespace": "prod", "deployment": "api", "service": "ksm"},
                               {"namespace": "prod", "deployment": "api", "service": "kube-state-metrics"}
                               ) == pytest.approx(6 / 7)


def test_no_identifying_labels_means_the_workload_component_is_full() -> None:
    assert workload_similarity({"severity": "critical"}, {}) == 1.0
    assert workload_similarity({}, {}) == 1.0


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("api-7d9f8b6c5-x2x4z", "api"),  # Deployment: ReplicaSet hash + random suffix
        ("api-5c4b9-abcde", "api"),  # hand-written suffixes with vowels still count
        ("api-7d9f-x2x4z", "api"),
        ("payments-api-55f6d7c8b9-m2n4p", "payments-api"),
        ("metrics-server-6d94bc8694-x2x4z", "metrics-server"),
        ("coredns-5d78c9869d-bcdfg", "coredns"),
        ("api-v2-7d9f8b6c5-x2x4z", "api-v2"),
        ("worker-bcdfghjk-x2x4z", "worker"),  # an all-letter hash from the Kubernetes alphabet
        ("node-exporter-x2x4z", "node-exporter"),  # DaemonSet: random suffix only
        ("kube-proxy-x2x4z", "kube-proxy"),  # `proxy` is a word, not a hash
        ("calico-node-z7k2q", "calico-node"),
        ("fluent-bit-7kq9w", "fluent-bit"),
        ("postgres-0", "postgres"),  # StatefulSet ordinal
        ("redis-cluster-12", "redis-cluster"),
        ("nightly-backup-28391234-x2x4z", "nightly-backup"),  # CronJob → Job → pod
        ("migrate-db-x2x4z", "migrate-db"),
        ("API-7D9F8B6C5-X2X4Z", "api"),
        (" api-7d9f8b6c5-x2x4z ", "api"),
        ("debug", "debug"),  # a bare pod keeps its name
        ("", ""),
    ],
)
def test_normalise_pod(pod: str, workload: str) -> None:
    assert normalise_pod(pod) == workload


@pytest.mark.parametrize(
    ("job", "expected"),
    [("nightly-backup-28391234", "nightly-backup"), ("db-migrate", "db-migrate"), ("report-v2", "report-v2"),
     ("etl-123", "etl-123")],
)
def test_normalise_job(job: str, expected: str) -> None:
    assert normalise_job(job) == expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("pod", "api-7d9f8b6c5-x2x4z", "api"),
        ("job_name", "backup-28391234", "backup"),
        ("deployment", "api-7d9f8b6c5", "api-7d9f8b6c5"),  # only pods and jobs carry generated suffixes
        ("namespace", " Prod ", "prod"),
        ("node", "ip-10-0-1-23.ec2.internal", "ip-10-0-1-23.ec2.internal"),
    ],
)
def test_normalise_label(key: str, value: str, expected: str) -> None:
    assert normalise_label(key, value) == expected


def test_workload_labels_keeps_the_identifying_subset_normalised() -> None:
    labels = crashloop("prod", "api-7d9f8b6c5-x2x4z", "api").labels
    assert workload_labels(labels) == {"namespace": "prod", "pod": "api", "container": "api",
                                       "service": "kube-prometheus-stack-kube-state-metrics"}
    assert workload_labels({"node": "node-1", "severity": "critical", "instance": "x"}) == {"node": "node-1"}
    assert workload_labels({"namespace": "  ", "deployment": "api"}) == {"deployment": "api"}
    assert set(workload_labels({key: "x" for key in IDENTIFYING_LABELS})) == set(IDENTIFYING_LABELS)


def test_trigger_stored_normalised_still_matches_names_that_normalise_twice() -> None:
    # A StatefulSet `db-1`: pods db-1-0, db-1-2. The trigger stores `db-1`; normalising it again
    # would give `db`, so the comparison also accepts the incident's normalised value as is.
    trigger = Trigger(alert_name="KubePodNotReady", labels=workload_labels({"namespace": "d", "pod": "db-1-0"}))
    assert trigger.labels["pod"] == "db-1"
    assert similarity("KubePodNotReady", {"namespace": "d", "pod": "db-1-2"}, "", trigger) >= THRESHOLD
    assert similarity("KubePodNotReady", {"namespace": "d", "pod": "db-2-0"}, "", trigger) < THRESHOLD


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Pod prod/api-7d9f8b6c5-x2x4z (api) is in waiting state.", {"pod", "prod", "api", "waiting", "state"}),
        ("80.5% throttling of CPU", {"throttling", "cpu"}),
        ("HPA prod/api has been running at max replicas for longer than 15 minutes.",
         {"hpa", "prod", "api", "running", "max", "replicas", "longer", "minutes"}),
        ("node ip-10-0-1-23.ec2.internal is unready", {"node", "ip", "internal", "unready"}),
        ("job backup-28391234 x2x4z bcdfg failed", {"job", "backup", "failed"}),
        ("", set()),
    ],
)
def test_symptom_tokens(text: str, tokens: set[str]) -> None:
    assert symptom_tokens(text) == tokens


def test_symptom_similarity_ignores_numbers_hashes_and_pod_suffixes() -> None:
    a = "Pod prod/api-7d9f8b6c5-x2x4z (api) has been restarting 5 times in 10m."
    b = "Pod prod/api-5c4b9-bcdfg (api) has been restarting 12 times in 15m."
    assert symptom_similarity(a, b) == 1.0
    assert symptom_similarity("", "") == 1.0
    assert symptom_similarity("disk full", "") == 0.0
    assert 0.0 < symptom_similarity("disk is full", "disk is slow") < 1.0
