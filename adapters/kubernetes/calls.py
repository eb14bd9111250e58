"""One cluster's calls: off the event loop, with the request timeout, retried when that is safe,
and every failure mapped to one of the core's typed errors in one place (`mapped`).

Answers are raw JSON (`_preload_content=False`, then one `json.loads`): signoff needs a few fields
of each object, and building the client's typed models for the whole object would cost more CPU
than everything else the executor does. One form everywhere: the facts, the writes, verification.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.failures import Attempt, api_error, translate
from core.domain.cluster import ClusterError, ClusterResult, ClusterUnavailable

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
# Backoff before each retry of a call that failed transiently (5xx, 429, a timeout, a dropped connection).
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
# Each cluster's calls run on threads of its own: a slow or unreachable cluster holds its own threads, never the
# ones another cluster's calls (or the rest of the process) need.
THREADS_PER_CLUSTER = 4


class Calls:
    """The API objects of one `ApiClient`, and the one way to call them."""

    def __init__(self, api_client: client.ApiClient, *, request_timeout: float = 10.0,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self.api_client = api_client
        self.timeout = request_timeout
        self._retry_delays = retry_delays
        self._version = client.VersionApi(api_client)
        # AppsV1Api and CoreV1Api import some 300 models (about half a second of CPU): they are built on
        # first use, in a worker thread, or ahead of it by `warm_up()` once the service listens.
        # `server_version()` (start-up) needs neither.
        self.apis: tuple[client.AppsV1Api, client.CoreV1Api] | None = None
        self._apis_lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=THREADS_PER_CLUSTER, thread_name_prefix="kubernetes")

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    def retrying(self, delays: tuple[float, ...]) -> Calls:
        """These calls (the same client, API objects and threads) with other backoff: a preview a person waits
        on is retried once, not for seconds."""
        other = copy.copy(self)
        other._retry_delays = delays
        return other

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    async def warm_up(self) -> None:
        if self.apis is None:
            await asyncio.to_thread(self._load_apis)

    def _load_apis(self) -> tuple[client.AppsV1Api, client.CoreV1Api]:
        with self._apis_lock:
            if self.apis is None:
                self.apis = (client.AppsV1Api(self.api_client), client.CoreV1Api(self.api_client))
            return self.apis

    @property
    def apps(self) -> client.AppsV1Api:
        return (self.apis or self._load_apis())[0]

    @property
    def core(self) -> client.CoreV1Api:
        return (self.apis or self._load_apis())[1]

    async def server_version(self) -> str:
        """The API server's version; any failure is `ClusterUnavailable` (the cluster is not usable)."""
        try:
            with self.mapped(Attempt(op=None)):
                info = await asyncio.to_thread(
                    functools.partial(self._version.get_code, _request_timeout=self.timeout))
        except ClusterError as error:
            if isinstance(error, ClusterUnavailable):
                raise
            raise ClusterUnavailable(error.message, reason=error.reason, status=error.status) from error
        return str(info.git_version)

    async def review(self, user: str, groups: tuple[str, ...], attributes: dict[str, str]) -> JSON:
        """A SubjectAccessReview (`[execution] as = "requester"`): may `user` make a call with these attributes?
        Asking changes nothing, so it is retried like a read."""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": list(groups), "resourceAttributes": attributes}}
        api = client.AuthorizationV1Api(self.api_client)
        return await self.read(api.create_subject_access_review, body)

    # ---- calls

    async def read(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> JSON:
        """A read, as raw JSON, retried with backoff when it fails transiently: reading twice changes nothing."""
        return await self._retrying(lambda: self._json(fn, *args, **kwargs), None, "read")

    async def read_or_none(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> JSON | None:
        """A read whose 404 means "not there" (a deleted pod, a missing target), not an error."""
        try:
            return await self.read(fn, *args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def write(
        self,
        attempt: Attempt,
        fn: Callable[..., Any],
        /,
        *args: Any,
        content_type: str | None = None,
        retry_safe: bool = False,
        retry_429: bool = True,
    ) -> JSON:
        """A write. Dry runs persist nothing, so they are always retried; a real call only when sending it
        twice has the effect of sending it once (`retry_safe`)."""
        kwargs: dict[str, Any] = {"dry_run": "All"} if attempt.dry_run else {}
        if content_type is not None:
            kwargs["_content_type"] = content_type

        def send() -> Awaitable[JSON]:
            attempt.sent_write = True
            return self._json(fn, *args, **kwargs)

        if not (attempt.dry_run or retry_safe):
            return await send()
        return await self._retrying(send, attempt, "dry_run" if attempt.dry_run else "write", retry_429=retry_429)

    async def _json(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> JSON:
        """One client call in a worker thread, with the request timeout, its answer parsed once."""

        def run() -> Any:
            response = fn(*args, _request_timeout=self.timeout, _preload_content=False, **kwargs)
            try:
                return json.loads(response.data)
            finally:
                response.release_conn()

        data = await asyncio.get_running_loop().run_in_executor(self._threads, run)
        if not isinstance(data, dict):
            raise ClusterUnavailable("The Kubernetes API server answered with something other than a JSON object.",
                                     reason="InvalidResponse")
        return data

    async def _retrying(self, call: Callable[[], Awaitable[_T]], attempt: Attempt | None, what: str, *,
                        retry_429: bool = True) -> _T:
        for delay in (*self._retry_delays, None):
            try:
                return await call()
            except Exception as error:
                if delay is None or not _transient(error) or (not retry_429 and getattr(error, "status", 0) == 429):
                    raise
                if attempt is not None:
                    attempt.retried += 1
                log.warning("kubernetes.retry", call=what, delay_s=delay, error=type(error).__name__,
                            status=getattr(error, "status", None))
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last try raises or returns")

    # ---- errors

    @contextmanager
    def mapped(self, attempt: Attempt, event: str | None = None, **fields: Any) -> Iterator[None]:
        """Inside: any client failure leaves as the core's typed error (logged as `event` when given);
        an exception that is our own bug leaves unchanged."""
        try:
            yield
        except Exception as error:
            found = self.translate(error, attempt)
            if found is None:
                raise
            if event is not None:
                log.warning(event, **fields, error=found.code, reason=found.reason, status=found.status)
            if found is error:
                raise
            raise found from error

    def translate(self, error: BaseException, attempt: Attempt) -> ClusterError | None:
        if isinstance(error, ApiException):
            return api_error(int(error.status or 0), error.reason, error.body, attempt)
        return translate(error, attempt, host=self.host, timeout=self.timeout)


def _transient(error: BaseException) -> bool:
    """Worth another try: the server was unavailable or overloaded, or the answer never came."""
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        return status in (0, 429) or status >= 500
    return isinstance(error, urllib3.exceptions.HTTPError | OSError)


def meta(obj: JSON | None) -> JSON:
    return (obj or {}).get("metadata") or {}


def spec(obj: JSON | None) -> JSON:
    return (obj or {}).get("spec") or {}


def result(summary: str, obj: JSON | None, generation: int | None = None, *, revision: int | None = None,
           uid: str | None = None, owner: str | None = None) -> ClusterResult:
    """What the core keeps of an answer: the summary, and what verification and the way back need."""
    return ClusterResult(summary=summary, resource_version=meta(obj).get("resourceVersion"), generation=generation,
                         revision=revision, uid=uid, owner=owner)
