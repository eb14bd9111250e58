"""Silences while an operation runs: which alerts of its target to hush, and how to say why.

A restart or a rollback makes its target's alerts fire for a while (pods restarting, replicas not
ready). With `[alertmanager] silence = true` signoff silences them in Alertmanager from the moment
the operation starts until its verification ends; the silence's own end is the verification
deadline, so a crash of signoff can never leave one behind.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.domain.operations import Operation


class AlertmanagerRules(BaseModel):
    """`[alertmanager]`: `silence = true` silences the target's alerts while its operation runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    silence: bool = False


class Matcher(BaseModel):
    """One Alertmanager matcher: `name="value"`, or `name=~"regex"`."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    is_regex: bool = False

    def show(self) -> str:
        return f'{self.name}{"=~" if self.is_regex else "="}"{self.value}"'


def matchers_for(operation: Operation) -> tuple[Matcher, ...]:
    """The alerts an operation may set off: its namespace plus the label that names the workload.

    A restart, scale or rollback replaces the workload's pods, and alerting rules label pod alerts with
    the owning workload (`deployment`, `statefulset`, `daemonset`, kube-state-metrics style); a pod
    deleted by name is matched on `pod`; node operations concern the node's alerts, whatever namespace.
    """
    target = operation.target_ref.split("/", 1)[0]
    if target == "node":
        return (Matcher(name="node", value=operation.name),)
    namespace = Matcher(name="namespace", value=getattr(operation, "namespace", "default"))
    if target == "pod":
        return namespace, Matcher(name="pod", value=operation.name)
    return namespace, Matcher(name=target, value=operation.name)


def silence_comment(request_id: str, command: str, signers: tuple[str, ...]) -> str:
    """What people see in Alertmanager's silence list: the request, what runs and who signed it."""
    signed = ", ".join(signers) if signers else "nobody"
    return f"signoff {request_id}: {command} (signed by {signed}); ends when its verification ends"
