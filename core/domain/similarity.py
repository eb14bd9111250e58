"""How similar a new alert is to a playbook's trigger: a score in [0, 1] the decision manager compares
with the policy's `[playbooks] similarity` threshold (default 0.85).

The formula (docs/similarity.md renders this docstring and explains it for people; keep both in step):

    score = round(0.5·A + 0.4·W + 0.1·S, 4)

A — alert name.  1 when the two alert names are equal (exact, after trimming whitespace), else 0.
    A different alert is a different problem, so with A = 0 the score is at most 0.5, far below
    any sensible threshold.

W — workload identity, in [0, 1], over the identifying labels (``IDENTIFYING_LABELS``) of both sides,
    each value normalised (``normalise_label``) so that pod, ReplicaSet-hash and CronJob-run
    suffixes do not matter:

    * *Anchor* labels name the thing the alert is about: ``cluster``, ``namespace``, ``deployment``,
      ``statefulset``, ``daemonset``, ``pod``, ``horizontalpodautoscaler``, ``job_name``, ``node``,
      ``persistentvolumeclaim``;
      ``service`` too, but only when neither side has any workload label (``TargetDown`` names its
      target by service; on kube-state-metrics alerts ``service`` is the exporter's own service).
      If an anchor label is present on both sides with different values, W = 0: a different
      namespace, cluster or workload is never the same incident, whatever else agrees.
    * Otherwise W = (sum of the weights of the labels equal on both sides) /
      (sum of the weights of the labels present on either side), with weight 3 for anchors and 1
      for the soft labels (``container``, and ``service`` when it is not an anchor). A label
      present on one side only counts as a disagreement. With no identifying label on either
      side (cluster-wide alerts such as ``Watchdog``) W = 1.

S — symptom text, in [0, 1]: the Jaccard index |T1 ∩ T2| / |T1 ∪ T2| of the two token sets
    (``symptom_tokens``): lower-cased alphanumeric words, dropping stop words, one-letter words,
    any word containing a digit (numbers, percentages, durations, IPs, hashes, ordinals) and
    words of four or more letters without a vowel (the consonant-only hashes Kubernetes
    generates). Both empty: S = 1; one empty: S = 0.

So the same alert on the same workload scores at least 0.9 whatever the symptom says; a soft
label that differs (another container of the same pod) still passes when the symptoms mostly
agree; a different alert, namespace, cluster or workload never reaches 0.85.

Values are compared after normalising both; a trigger's value also matches when it equals the
incident's normalised value, because triggers are stored already normalised
(``workload_labels``) and normalisation is not idempotent for every name (``db-1-2`` → ``db-1``
→ ``db``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.domain.playbooks import Trigger

WEIGHT_ALERT = 0.5
WEIGHT_WORKLOAD = 0.4
WEIGHT_SYMPTOM = 0.1
ANCHOR_WEIGHT = 3
SOFT_WEIGHT = 1

WORKLOAD_KEYS: tuple[str, ...] = (
    "deployment",
    "statefulset",
    "daemonset",
    "pod",
    "horizontalpodautoscaler",
    "job_name",
    "node",
    "persistentvolumeclaim",
)
# `cluster` is not a Kubernetes label of the alert's object, but multi-cluster Prometheus setups
# (Thanos, Mimir) add it, and staging and prod often run the same namespaces in two clusters.
ANCHOR_KEYS: tuple[str, ...] = ("cluster", "namespace", *WORKLOAD_KEYS)
SOFT_KEYS: tuple[str, ...] = ("container", "service")
IDENTIFYING_LABELS: tuple[str, ...] = (*ANCHOR_KEYS, *SOFT_KEYS)

# Kubernetes' random name suffixes come from this alphabet (apimachinery util/rand: no vowels,
# no 0/1/3, so generated names never spell words).
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The 5-character pod suffix is matched leniently ([a-z0-9]) because hand-written fixtures and
# docs use suffixes such as `abcde`; the ReplicaSet hash must look generated (k8s alphabet, or
# containing a digit) so that a DaemonSet such as `kube-proxy` keeps its second word.
_POD_RANDOM = r"[a-z0-9]{5}"
_RS_HASH = rf"(?:[{_K8S_ALPHABET}]{{4,10}}|(?=[a-z0-9]{{0,9}}[0-9])[a-z0-9]{{4,10}})"
_DEPLOYMENT_POD = re.compile(rf"^(?P<workload>.+)-{_RS_HASH}-{_POD_RANDOM}$")
_RANDOM_SUFFIX_POD = re.compile(rf"^(?P<workload>.+)-{_POD_RANDOM}$")
_ORDINAL = re.compile(r"^(?P<workload>.+)-\d+$")
# A CronJob's Job is `<cronjob>-<scheduled time in minutes since the epoch>`.
_CRONJOB_RUN = re.compile(r"^(?P<workload>.+)-\d{6,}$")

_WORD = re.compile(r"[a-z0-9]+")
_VOWELS = frozenset("aeiouy")
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "for", "from", "has", "have", "in", "is", "it",
    "its", "of", "on", "or", "than", "that", "the", "this", "to", "was", "were", "which", "with", "more", "less",
})


def normalise_pod(name: str) -> str:
    """The workload a pod belongs to, from the pod's name alone.

    `api-7d9f8b6c5-x2x4z` (Deployment: ReplicaSet hash + random suffix) → `api`;
    `node-exporter-x2x4z` (DaemonSet, Job) → `node-exporter`; `postgres-0` (StatefulSet ordinal)
    → `postgres`; `backup-28391234-x2x4z` (a CronJob's Job's pod) → `backup`.
    """
    name = name.strip().lower()
    for pattern in (_DEPLOYMENT_POD, _RANDOM_SUFFIX_POD):
        match = pattern.match(name)
        if match:
            workload = match["workload"]
            run = _CRONJOB_RUN.match(workload)
            return run["workload"] if run else workload
    match = _ORDINAL.match(name)
    return match["workload"] if match else name


def normalise_job(name: str) -> str:
    """`nightly-backup-28391234` (a CronJob's run) → `nightly-backup`; other Job names unchanged."""
    name = name.strip().lower()
    match = _CRONJOB_RUN.match(name)
    return match["workload"] if match else name


def normalise_label(key: str, value: str) -> str:
    """The comparable form of one identifying label's value."""
    if key == "pod":
        return normalise_pod(value)
    if key == "job_name":
        return normalise_job(value)
    # Kubernetes names are lower-case; trimming and lower-casing only forgives sloppy templates.
    return value.strip().lower()


def workload_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The identifying subset of an alert's labels, normalised: what a playbook's trigger keeps."""
    return {
        key: normalise_label(key, labels[key])
        for key in IDENTIFYING_LABELS
        if key in labels and labels[key].strip()
    }


def symptom_tokens(text: str) -> frozenset[str]:
    """The words of a symptom that survive from one firing of an alert to the next."""
    return frozenset(word for word in _WORD.findall(text.lower()) if _keeps(word))


def _keeps(word: str) -> bool:
    if len(word) < 2 or word in _STOP_WORDS:
        return False
    if any(ch.isdigit() for ch in word):
        return False
    return not (len(word) >= 4 and not _VOWELS.intersection(word))


def symptom_similarity(left: str, right: str) -> float:
    a, b = symptom_tokens(left), symptom_tokens(right)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def workload_similarity(labels: Mapping[str, str], trigger_labels: Mapping[str, str]) -> float:
    """W of the module docstring: 0 on any anchor disagreement, else the weighted agreement."""
    incident = _identifying(labels)
    trigger = _identifying(trigger_labels)
    keys = set(incident) | set(trigger)
    if not keys:
        return 1.0
    names_workload = any(key in keys for key in WORKLOAD_KEYS)
    agreed = 0
    total = 0
    for key in keys:
        anchor = key in ANCHOR_KEYS or (key == "service" and not names_workload)
        weight = ANCHOR_WEIGHT if anchor else SOFT_WEIGHT
        total += weight
        if key in incident and key in trigger:
            if _same(key, incident[key], trigger[key]):
                agreed += weight
            elif anchor:
                return 0.0
    return agreed / total


def similarity(alert_name: str, labels: Mapping[str, str], symptom: str, trigger: Trigger) -> float:
    """The similarity in [0, 1] of a new alert (name, labels, symptom text) to a playbook trigger."""
    same_alert = 1.0 if alert_name.strip() == trigger.alert_name.strip() else 0.0
    score = (
        WEIGHT_ALERT * same_alert
        + WEIGHT_WORKLOAD * workload_similarity(labels, trigger.labels)
        + WEIGHT_SYMPTOM * symptom_similarity(symptom, trigger.symptom)
    )
    # Rounded so that a score meant to be exactly on the threshold is not 0.8499999999.
    return round(min(max(score, 0.0), 1.0), 4)


def _identifying(labels: Mapping[str, str]) -> dict[str, str]:
    return {key: labels[key] for key in IDENTIFYING_LABELS if key in labels and labels[key].strip()}


def _same(key: str, incident_value: str, trigger_value: str) -> bool:
    normal = normalise_label(key, incident_value)
    return normal in (normalise_label(key, trigger_value), trigger_value.strip().lower())
