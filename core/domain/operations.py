"""The allow-list of Kubernetes operations and the parser that is its only way in.

Anything the parser does not recognise is refused with the list of accepted forms;
there is no fallback that passes text through to a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, TypeAlias, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.errors import ParseError

MAX_ACTION_LENGTH = 300
MAX_REPLICAS_SYNTAX = 100_000

ACCEPTED_FORMS = (
    "rollout restart deployment/api -n prod",
    "scale deployment/web --replicas=3 -n staging",
    "rollout undo deployment/api -n prod",
    "delete pod web-7d9f -n prod",
    "cordon node-1",
    "uncordon node-1",
    "drain node-1 --ignore-daemonsets",
    "restart deployment api in prod",
    "scale deployment web to 3 in staging",
    "rollback deployment api in prod",
    "delete pod web-7d9f in prod",
    "cordon node node-1",
    "drain node node-1",
)

ACCEPTED_FORMS_TEXT = (
    "Accepted forms (the `kubectl` prefix is optional, the namespace defaults to `default`; "
    "restart works on deployment, statefulset and daemonset, scale on deployment and statefulset):\n"
    + "\n".join(f"  • {form}" for form in ACCEPTED_FORMS)
)

# Always used with fullmatch: `$` would also match before a trailing newline.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A cluster's name: what people type after `--context`, ` on ` and `cluster=`.
CLUSTER_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9 ._/=\-]*")

WorkloadKind = Literal["deployment", "statefulset", "daemonset"]
ScalableKind = Literal["deployment", "statefulset"]

_KIND_ALIASES: dict[str, str] = {
    "deployment": "deployment",
    "deployments": "deployment",
    "deploy": "deployment",
    "statefulset": "statefulset",
    "statefulsets": "statefulset",
    "sts": "statefulset",
    "daemonset": "daemonset",
    "daemonsets": "daemonset",
    "ds": "daemonset",
    "pod": "pod",
    "pods": "pod",
    "po": "pod",
    "node": "node",
    "nodes": "node",
    "no": "node",
}


class Identity(BaseModel):
    """Whom the cluster sees make the calls (`[execution] as = "requester"`): set by signoff from the policy, never
    from the action text (the parser refuses `--as`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    groups: tuple[str, ...] = ()


class _Op(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    # The cluster the request names (`--context eu-1`, ` on eu-1`, `cluster=eu-1`); None: the default one.
    # Left out of the signed digest when None, so digests made before several clusters keep.
    cluster: str | None = None
    # None: signoff's own account; also left out of the signed digest when None.
    identity: Identity | None = None

    @property
    def on(self) -> str:
        where = f" --context {self.cluster}" if self.cluster else ""
        if self.identity is not None:
            where += f" --as {self.identity.user}" + "".join(f" --as-group {g}" for g in self.identity.groups)
        return where

    @property
    def target_ref(self) -> str:
        target: str = getattr(self, "target")  # noqa: B009 - every concrete operation defines it
        return f"{target}/{self.name}"

    @property
    def where(self) -> str:
        namespace: str | None = getattr(self, "namespace", None)
        return f" -n {namespace}" if namespace else ""


class RestartOp(_Op):
    kind: Literal["restart"] = "restart"
    target: WorkloadKind
    namespace: str = "default"

    def command(self) -> str:
        return f"kubectl rollout restart {self.target_ref}{self.where}{self.on}"


class ScaleOp(_Op):
    kind: Literal["scale"] = "scale"
    target: ScalableKind
    namespace: str = "default"
    replicas: int = Field(ge=0)

    def command(self) -> str:
        return f"kubectl scale {self.target_ref} --replicas={self.replicas}{self.where}{self.on}"


class RollbackOp(_Op):
    kind: Literal["rollback"] = "rollback"
    target: Literal["deployment"] = "deployment"
    namespace: str = "default"
    # Set at execution from the request's pin (never stored nor signed as such: the pin is): the ReplicaSet
    # the card showed; the rollback goes to exactly it (core/domain/pinning.py).
    to_replica_set: str | None = Field(default=None, exclude=True)

    def command(self) -> str:
        return f"kubectl rollout undo {self.target_ref}{self.where}{self.on}"


class DeletePodOp(_Op):
    kind: Literal["delete"] = "delete"
    target: Literal["pod"] = "pod"
    namespace: str = "default"

    def command(self) -> str:
        return f"kubectl delete {self.target_ref}{self.where}{self.on}"


class CordonOp(_Op):
    kind: Literal["cordon"] = "cordon"
    target: Literal["node"] = "node"
    namespace: None = None

    def command(self) -> str:
        return f"kubectl cordon {self.name}{self.on}"


class UncordonOp(_Op):
    kind: Literal["uncordon"] = "uncordon"
    target: Literal["node"] = "node"
    namespace: None = None

    def command(self) -> str:
        return f"kubectl uncordon {self.name}{self.on}"


class DrainOp(_Op):
    """Cordon, then evict every pod of the node through the Eviction API (PodDisruptionBudgets
    respected), skipping DaemonSet pods and mirror pods as `kubectl drain --ignore-daemonsets` does."""

    kind: Literal["drain"] = "drain"
    target: Literal["node"] = "node"
    namespace: None = None

    def command(self) -> str:
        return f"kubectl drain {self.name} --ignore-daemonsets{self.on}"


Operation = Annotated[
    RestartOp | ScaleOp | RollbackOp | DeletePodOp | CordonOp | UncordonOp | DrainOp,
    Field(discriminator="kind"),
]
OPERATION: TypeAdapter[Operation] = TypeAdapter(Operation)
# A dispatch table's key: one concrete operation class.
OperationType: TypeAlias = type[_Op]
# Every concrete operation type, read off the union above so the two never disagree.
OPERATION_TYPES: tuple[OperationType, ...] = get_args(get_args(Operation)[0])

_V = TypeVar("_V")


def by_operation(handlers: Mapping[OperationType, _V]) -> dict[OperationType, _V]:
    """A dispatch table keyed by operation type, refused at import when it misses a kind.

    Code that does something different per operation (the risk floor, the blast radius, the
    executor) looks its handler up here with `table[type(op)]` instead of a chain of
    isinstance checks, so a new operation kind fails loudly until every table handles it.
    """
    missing = [t.__name__ for t in OPERATION_TYPES if t not in handlers]
    unknown = [t.__name__ for t in handlers if t not in OPERATION_TYPES]
    if missing or unknown:
        raise TypeError(f"dispatch table: missing {missing or 'nothing'}, not operations {unknown or 'none'}")
    return dict(handlers)

_VERBS = ("rollout", "restart", "rollback", "scale", "delete", "cordon", "uncordon", "drain")
_NODE_VERBS = ("cordon", "uncordon", "drain")


def parse_operation(text: str) -> Operation:
    """Parse action text into an Operation, or raise ParseError naming the accepted forms."""
    tokens = _tokenize(text)
    if tokens and tokens[0].lower() == "kubectl":
        tokens = tokens[1:]
    if not tokens:
        raise _refuse("the action is empty")
    verb = tokens[0].lower()
    rest = tokens[1:]
    if verb == "rollout":
        if not rest or rest[0].lower() not in ("restart", "undo"):
            raise _refuse("`rollout` must be followed by `restart` or `undo`")
        verb = "restart" if rest[0].lower() == "restart" else "rollback"
        rest = rest[1:]
    if verb not in _VERBS:
        raise _refuse(f"`{_show(tokens[0])}` is not an operation signoff runs")
    args = _Args.collect(verb, rest)
    operation = _build(verb, args)
    if args.cluster is None:
        return operation
    if not CLUSTER_NAME.fullmatch(args.cluster):
        raise _refuse(f"`{_show(args.cluster)}` is not a cluster name")
    return operation.model_copy(update={"cluster": args.cluster})


def _tokenize(text: str) -> list[str]:
    if len(text) > MAX_ACTION_LENGTH:
        raise _refuse(f"the action is longer than {MAX_ACTION_LENGTH} characters")
    text = text.strip()  # surrounding white space (a pasted newline) is not part of the action
    if not _ALLOWED_CHARS.fullmatch(text):
        bad = sorted({c for c in text if not _ALLOWED_CHARS.fullmatch(c)})
        shown = " ".join(repr(c) for c in bad[:5])
        raise _refuse(f"it contains characters signoff never accepts ({shown})")
    return text.split()


class _Args:
    """Positional words and the few flags the allow-list knows, in any order."""

    def __init__(self) -> None:
        self.positional: list[str] = []
        self.namespace: str | None = None
        self.replicas: str | None = None
        self.cluster: str | None = None

    @classmethod
    def collect(cls, verb: str, rest: list[str]) -> _Args:
        args = cls()
        # ` on eu-1` at the end of the English form names the cluster.
        if len(rest) >= 3 and rest[-2].lower() == "on" and not rest[-1].startswith("-"):
            args.cluster = rest[-1]
            rest = rest[:-2]
        i = 0
        while i < len(rest):
            token = rest[i]
            low = token.lower()
            value: str | None = None
            if "=" in token and token.startswith("-"):
                flag, value = token.split("=", 1)
                low = flag.lower()
            if low in ("-n", "--namespace", "in"):
                if value is None:
                    i += 1
                    value = rest[i] if i < len(rest) else None
                if not value:
                    raise _refuse(f"`{low}` needs a namespace after it")
                if args.namespace is not None:
                    raise _refuse("the namespace is given twice")
                args.namespace = value
            elif low in ("--replicas", "to") and verb == "scale":
                if value is None:
                    i += 1
                    value = rest[i] if i < len(rest) else None
                if not value:
                    raise _refuse(f"`{low}` needs a number of replicas after it")
                if args.replicas is not None:
                    raise _refuse("the number of replicas is given twice")
                args.replicas = value
            elif low == "--context":
                if value is None:
                    i += 1
                    value = rest[i] if i < len(rest) else None
                if not value or value.startswith("-"):
                    raise _refuse("`--context` needs a cluster name after it")
                if args.cluster is not None:
                    raise _refuse("the cluster is given twice")
                args.cluster = value
            elif low == "--replicas":
                raise _refuse("only `scale` takes a number of replicas")
            elif low == "--ignore-daemonsets" and verb == "drain":
                # signoff's drain always leaves DaemonSet pods alone; the flag only says so.
                if value is not None and value.lower() != "true":
                    raise _refuse("a drain always ignores DaemonSet pods (`--ignore-daemonsets=false` is not accepted)")
            elif token.startswith("-"):
                raise _refuse(f"the option `{_show(token)}` is not accepted")
            else:
                args.positional.append(token)
            i += 1
        return args


def _build(verb: str, args: _Args) -> Operation:
    kind, name = _target(verb, args.positional)
    if verb in _NODE_VERBS:
        if kind != "node":
            raise _refuse(f"`{verb}` works on nodes, not on a {kind}")
        if args.namespace is not None:
            raise _refuse("nodes are not namespaced; drop the namespace")
        _check_name(name, "node")
        if verb == "drain":
            return DrainOp(name=name)
        return CordonOp(name=name) if verb == "cordon" else UncordonOp(name=name)
    namespace = args.namespace if args.namespace is not None else "default"
    _check_namespace(namespace)
    _check_name(name, kind)
    if verb == "scale":
        if kind not in ("deployment", "statefulset"):
            raise _refuse(f"`scale` works on a deployment or a statefulset, not on a {kind}")
        replicas = _replicas(args.replicas)
        return ScaleOp(target=kind, name=name, namespace=namespace, replicas=replicas)
    if args.replicas is not None:
        raise _refuse("only `scale` takes a number of replicas")
    if verb == "restart":
        if kind not in ("deployment", "statefulset", "daemonset"):
            raise _refuse(f"`restart` works on a deployment, statefulset or daemonset, not on a {kind}")
        return RestartOp(target=kind, name=name, namespace=namespace)
    if verb == "rollback":
        if kind != "deployment":
            raise _refuse(f"`rollout undo` works on a deployment, not on a {kind}")
        return RollbackOp(name=name, namespace=namespace)
    if kind != "pod":
        raise _refuse(f"`delete` works on a single pod only, not on a {kind}")
    return DeletePodOp(name=name, namespace=namespace)


def _target(verb: str, words: list[str]) -> tuple[str, str]:
    """`kind/name`, `kind name`, or for node verbs just `name`."""
    node_verb = verb in _NODE_VERBS
    if not words:
        raise _refuse(f"`{verb}` needs a target such as `{'node-1' if node_verb else 'deployment/api'}`")
    if len(words) == 1 and "/" in words[0]:
        kind_word, _, name = words[0].partition("/")
    elif len(words) == 1 and words[0].lower() in _KIND_ALIASES and not node_verb:
        raise _refuse(f"`{verb} {_show(words[0])}` needs a name after the kind")
    elif len(words) == 1 and node_verb:
        return "node", words[0]
    elif len(words) == 2 and "/" not in words[0] + words[1] and words[0].lower() in _KIND_ALIASES:
        kind_word, name = words
    else:
        raise _refuse(f"`{verb}` takes exactly one target, got `{_show(' '.join(words))}`")
    kind = _KIND_ALIASES.get(kind_word.lower())
    if kind is None:
        raise _refuse(f"`{_show(kind_word)}` is not a resource kind signoff works on")
    return kind, name


def _replicas(value: str | None) -> int:
    if value is None:
        raise _refuse("`scale` needs a number of replicas (`--replicas=3` or `to 3`)")
    if not value.isdigit() or not value.isascii() or len(value) > 6:
        raise _refuse(f"`{_show(value)}` is not a number of replicas")
    replicas = int(value)
    if replicas >= MAX_REPLICAS_SYNTAX:
        raise _refuse(f"{replicas} replicas is beyond anything signoff will scale to")
    return replicas


def _check_name(name: str, kind: str) -> None:
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise _refuse(
            f"`{_show(name)}` is not a valid {kind} name (lower-case letters, digits, `-` and `.`, "
            "starting and ending with a letter or digit, at most 253 characters)"
        )


def _check_namespace(namespace: str) -> None:
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        raise _refuse(
            f"`{_show(namespace)}` is not a valid namespace (lower-case letters, digits and `-`, "
            "at most 63 characters)"
        )


def _show(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(reason: str) -> ParseError:
    return ParseError(f"I can't run that: {reason}.\n{ACCEPTED_FORMS_TEXT}")
