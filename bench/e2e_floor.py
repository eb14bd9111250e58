"""The library floor of one end-to-end request (issue 17): the bot's external work, with the same libraries and
nothing of signoff. Run by `bench/e2e_load.py --floor` right after the bot, in the same run, against the same fakes.

    python bench/e2e_floor.py --plan PLAN.json --port P --kubeconfig K --slack-url U --slack-token T --db F \
        [--census OUT.json]

PLAN (written by the bench from what the bot did in its window) gives, per request, the average count of each
Slack call kind, each Kubernetes call kind (`kube_key`), each SQLite statement kind (`bench/counted.py`'s keys),
and the average size of each Slack call's arguments. One request, as the bot does it:

- `POST /api/v1/requests` (aiohttp; bearer token, JSON in, 201 JSON out): the preview's reads and dry run
  (official `kubernetes` client, raw JSON as the bot reads it, each call in a worker thread), then the card
  (`chat.postMessage` with blocks, slack_sdk's `AsyncWebClient` over one pooled aiohttp session);
- `POST /slack/events`: slack_bolt's `AsyncApp` verifies the signature and acks each `block_actions` click, and
  the click is answered on its `response_url` (slack_sdk's `AsyncWebhookClient`); the second runs the request:
- a thread reply, card updates, a read, a dry run and the patch, a watch of the deployment, a list and a watch
  of its pods (each watch in a thread of its own, as the bot's) until the rollout is done, the outcome reply;
- raw `sqlite3` (WAL, synchronous=NORMAL, one file, on the event loop) runs the plan's transactions and
  statements, spread over the request's steps: JSON rows, timeline rows, outbox rows, updates, point selects.

A kind the plan gives a fractional count (1.85 card updates) is done so that the mean over the run matches.
`--census OUT`: its statements are counted (SIGUSR1 starts, a second writes OUT), as `bench/counted.py` counts
the bot's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.counted import Census

NAMESPACE = "crash"
CHANNEL = "C0APPROVALS"
MERGE_PATCH = "application/merge-patch+json"
FIRST_NUMBER = 100_001  # far from the bot's request numbers on the same fake Slack
TARGET = re.compile(r"app-\d+")
OWN_TABLES = ("requests", "timeline", "outbox")  # the floor's own schema; any other table the bot used: (key, value)
JSON = dict[str, Any]


def kube_key(method: str, path: str, query: dict[str, str]) -> str:
    """A Kubernetes call's kind: method, path and query with the target's name as {name}, resourceVersion left out."""
    shown = "&".join(f"{k}={TARGET.sub('{name}', v)}" for k, v in sorted(query.items()) if k != "resourceVersion")
    return f"{method} {TARGET.sub('{name}', path)}{'?' + shown if shown else ''}"


DEPLOYMENT = "/apis/apps/v1/namespaces/crash/deployments/{name}"
PODS = "/api/v1/namespaces/crash/pods"
GET = kube_key("GET", DEPLOYMENT, {})
LIST_PODS = kube_key("GET", PODS, {"labelSelector": "app={name}"})
DRY_RUN = kube_key("PATCH", DEPLOYMENT, {"dryRun": "All"})
PATCH = kube_key("PATCH", DEPLOYMENT, {})
HPAS = kube_key("GET", "/apis/autoscaling/v2/namespaces/crash/horizontalpodautoscalers", {})
SERVICES = kube_key("GET", "/api/v1/namespaces/crash/services", {})
WATCH_DEPLOYMENT = kube_key("GET", "/apis/apps/v1/namespaces/crash/deployments", {
    "allowWatchBookmarks": "true", "fieldSelector": "metadata.name={name}", "timeoutSeconds": "300", "watch": "true"})
WATCH_PODS = kube_key("GET", PODS, {"allowWatchBookmarks": "true", "labelSelector": "app={name}",
                                    "timeoutSeconds": "300", "watch": "true"})
PREVIEW = (GET, LIST_PODS, DRY_RUN, HPAS, SERVICES)  # at create, before the card (the bot's preview)
EXECUTE = (GET, DRY_RUN, PATCH)  # after the quorum click; then the follow: WATCH_DEPLOYMENT, LIST_PODS, WATCH_PODS
FOLLOW = (WATCH_DEPLOYMENT, LIST_PODS, WATCH_PODS)


class Quota:
    """Per request, how many times to do each kind so that the mean over the run is the plan's (1.85 → 2, 2, 1, …)."""

    def __init__(self, means: dict[str, float]) -> None:
        self._means = means
        self._owed = dict.fromkeys(means, 0.0)

    def take(self, kind: str, mean: float | None = None) -> int:
        self._owed[kind] = self._owed.get(kind, 0.0) + (self._means.get(kind, 0.0) if mean is None else mean)
        n = int(self._owed[kind] + 1e-9)
        self._owed[kind] -= n
        return n


class Kube:
    """The official client as the bot uses it: typed API methods, `_preload_content=False`, one `json.loads`."""

    def __init__(self, kubeconfig: str, means: dict[str, float]) -> None:
        api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        self.apps, self.core = client.AppsV1Api(api), client.CoreV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)
        self.quota = Quota(means)
        self._threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kubernetes")
        # Plain calls per occurrence: what the follow does not already make (it lists the pods once).
        counts = {kind: (PREVIEW + EXECUTE).count(kind) for kind in means}
        self._share = {kind: max(0.0, mean - FOLLOW.count(kind)) / counts[kind]
                       for kind, mean in means.items() if counts.get(kind)}

    def calls(self, kind: str, name: str) -> list[Callable[[], Any]]:
        body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": name}}}}}
        make: dict[str, Callable[[], Any]] = {
            GET: lambda: self.apps.read_namespaced_deployment(name, NAMESPACE, _preload_content=False),
            LIST_PODS: lambda: self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}",
                                                             _preload_content=False),
            DRY_RUN: lambda: self.apps.patch_namespaced_deployment(name, NAMESPACE, body, dry_run="All",
                                                                   _content_type=MERGE_PATCH, _preload_content=False),
            PATCH: lambda: self.apps.patch_namespaced_deployment(name, NAMESPACE, body, _content_type=MERGE_PATCH,
                                                                 _preload_content=False),
            HPAS: lambda: self.autoscaling.list_namespaced_horizontal_pod_autoscaler(NAMESPACE, _preload_content=False),
            SERVICES: lambda: self.core.list_namespaced_service(NAMESPACE, _preload_content=False),
        }
        return [make[kind]] * self.quota.take(kind, self._share.get(kind, 0.0))

    async def run(self, kinds: tuple[str, ...], name: str) -> JSON:
        answer: JSON = {}
        for kind in kinds:
            for call in self.calls(kind, name):
                answer = await asyncio.get_running_loop().run_in_executor(self._threads, _json, call)
        return answer

    async def follow(self, name: str, generation: int) -> None:
        """Watch the deployment until its rollout is done; from its first event, list its pods and watch them."""
        await asyncio.to_thread(self._follow, name, generation)

    def _follow(self, name: str, generation: int) -> None:
        stop, pods = threading.Event(), list[Any]()
        watch: dict[str, Any] = {"watch": True, "timeout_seconds": 300, "allow_watch_bookmarks": True,
                                 "_preload_content": False, "_request_timeout": (5, 330)}
        response: Any = self.apps.list_namespaced_deployment(NAMESPACE, field_selector=f"metadata.name={name}", **watch)
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                obj = json.loads(line).get("object") or {}
                if not pods:
                    listed = _json(lambda: self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}",
                                                                         _preload_content=False))
                    since = str(listed["metadata"]["resourceVersion"])
                    pods.append(self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}",
                                                              resource_version=since, **watch))
                    threading.Thread(target=_drain, args=(pods[0], stop), daemon=True).start()
                if _rolled_out(obj, generation):
                    break
        finally:
            stop.set()
            response.release_conn()
            for stream in pods:
                stream.shutdown()


def _json(call: Callable[[], Any]) -> JSON:
    response = call()
    try:
        data: JSON = json.loads(response.data)
        return data
    finally:
        response.release_conn()


def _drain(response: Any, stop: threading.Event) -> None:
    try:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if stop.is_set():
                return
            json.loads(line)
    except Exception:  # shut down under the read: the follow is over
        return


def _rolled_out(obj: JSON, generation: int) -> bool:
    """kubectl rollout status: the change observed, all replicas updated and available, no old ones left."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    observed = int(status.get("observedGeneration") or 0) >= max(generation, int(obj["metadata"]["generation"]))
    return observed and all(int(status.get(f) or 0) == desired for f in ("updatedReplicas", "replicas",
                                                                           "availableReplicas"))


class Store:
    """Raw sqlite3 on the event loop: the plan's statements, in the plan's number of transactions."""

    def __init__(self, path: str, means: dict[str, float]) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, number INTEGER, status TEXT, body TEXT,"
            " updated_at TEXT);"
            "CREATE TABLE IF NOT EXISTS timeline (id INTEGER PRIMARY KEY, request_id TEXT, type TEXT, at TEXT,"
            " data TEXT, hash TEXT); CREATE INDEX IF NOT EXISTS timeline_request ON timeline (request_id);"
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, request_id TEXT, kind TEXT, payload TEXT,"
            " due_at TEXT, state TEXT); CREATE INDEX IF NOT EXISTS outbox_request ON outbox (request_id);")
        self.kinds = [k for k in means if k.split()[0] in ("INSERT", "UPDATE", "SELECT", "DELETE")]
        for table in {k.partition(" ")[2] for k in self.kinds} - set(OWN_TABLES):  # the bot's other tables
            self.db.executescript(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, key TEXT, value TEXT);"
                                  f"CREATE INDEX IF NOT EXISTS {table}_key ON {table} (key);")
        self.quota = Quota(means)
        self.last: dict[tuple[str, str], int] = {}  # (table, request id) → the row it inserted last
        self.census = Census()
        self.census.attach(self.db)

    def plan(self, rid: str, steps: int) -> list[list[list[tuple[str, str]]]]:
        """This request's transactions (each a list of (statement kind, request id)), in `steps` parts."""
        statements = [(kind, rid) for kind in self.kinds for _ in range(self.quota.take(kind))]
        count = max(1, self.quota.take("BEGIN"))
        transactions = [statements[i::count] for i in range(count)]
        return [transactions[i * count // steps:(i + 1) * count // steps] for i in range(steps)]

    def run(self, transactions: list[list[tuple[str, str]]]) -> None:
        for statements in transactions:
            self.db.execute("BEGIN IMMEDIATE" if any(not k.startswith("SELECT") for k, _ in statements) else "BEGIN")
            for kind, rid in statements:
                self._one(kind, rid)
            self.db.execute("COMMIT")

    def _one(self, kind: str, rid: str) -> None:
        verb, _, table = kind.partition(" ")
        row = json.dumps({"id": rid, "action": "rollout restart deployment -n crash", "by": "assistant",
                          "risk": "high", "reason": "load", "policy": {"quorum": 2, "approvers": ["sre"]},
                          "at": "2026-12-05T12:00:00.000000+00:00"})
        at = "2026-12-05T12:00:00.000000+00:00"
        if verb == "INSERT" and table == "requests":
            self.db.execute("INSERT OR REPLACE INTO requests VALUES (?, ?, 'pending', ?, ?)",
                            (rid, int(rid[2:]), row, at))
        elif verb == "INSERT":
            values = ((rid, "signed", at, row, "0" * 64) if table == "timeline" else (rid, "card", row, at, "due")
                      if table == "outbox" else (rid, row[:120]))
            cursor = self.db.execute(f"INSERT INTO {table} VALUES (NULL, {', '.join('?' * len(values))})", values)
            self.last[table, rid] = int(cursor.lastrowid or 0)
        elif verb == "UPDATE" and table == "requests":
            self.db.execute("UPDATE requests SET status = 'approved', body = ? WHERE id = ?", (row, rid))
        elif verb == "UPDATE":
            column = "state" if table == "outbox" else "type" if table == "timeline" else "value"
            self.db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (at, self.last.get((table, rid), 0)))
        elif verb == "DELETE":
            self.db.execute(f"DELETE FROM {table} WHERE id = ?", (self.last.get((table, rid), 0),))
        else:
            column = "id" if table == "requests" else "request_id" if table in OWN_TABLES else "key"
            self.db.execute(f"SELECT * FROM {table} WHERE {column} = ?", (rid,)).fetchall()


class Floor:
    STEPS = 6  # the request's steps its transactions are spread over

    def __init__(self, args: argparse.Namespace, plan: dict[str, Any], session: aiohttp.ClientSession) -> None:
        self.token, self.session = args.token, session
        self.slack = AsyncWebClient(token=args.slack_token, base_url=args.slack_url, session=session)
        self.bolt = AsyncApp(client=self.slack, signing_secret=args.signing_secret)
        self.bolt.action("signoff_approve")(self.on_click)
        self.kube = Kube(args.kubeconfig, plan["kube"])
        self.store = Store(args.db, plan["sql"])
        self.quota = Quota(plan["slack"])
        self.sizes: dict[str, float] = plan["sizes"]
        self.clicks_answered = plan["slack"].get("response_url", 0.0) / 2  # per click: two a request
        self.numbers = iter(range(FIRST_NUMBER, 10**9))
        self.requests: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def padded(self, kind: str, args: JSON) -> JSON:
        """`args` with sections added so their JSON is about as long as the bot's calls of this kind."""
        missing = int(self.sizes.get(kind, 0)) - len(json.dumps(args))
        if "blocks" in args:
            args["blocks"] += [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * min(2900, missing - n)}}
                               for n in range(0, max(0, missing - 60), 2960)]
        elif missing > 0:
            args["text"] += " " + "x" * missing
        return args

    async def create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json()
        rid = f"R-{next(self.numbers)}"
        name = str(body["action"]).split("/")[1].split()[0]
        state: dict[str, Any] = {"name": name, "signed": 0, "sql": self.store.plan(rid, self.STEPS)}
        self.requests[rid] = state
        self.store.run(state["sql"][0])
        self.spawn(self.card(rid, name))
        return web.json_response({"id": rid, "status": "pending", "action": body["action"]}, status=201)

    async def card(self, rid: str, name: str) -> None:
        await self.kube.run(PREVIEW, name)
        text = f"⏳ {rid} · kubectl rollout restart deployment/{name} -n crash · PENDING · high"
        card = self.padded("card", {"channel": CHANNEL, "text": text, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "signoff_approve", "value": rid, "text": {"type": "plain_text",
                                                                                          "text": "Approve"}},
                {"type": "button", "action_id": "signoff_deny", "value": rid, "text": {"type": "plain_text",
                                                                                       "text": "Deny"}}]}]})
        for _ in range(self.quota.take("card")):
            response = await self.slack.chat_postMessage(**card)
            self.requests[rid]["ts"] = response["ts"]

    async def events(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        bolt_request = AsyncBoltRequest(body=raw.decode("utf-8", "replace"), query=request.query_string,
                                        headers=dict(request.headers.items()))
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def on_click(self, ack: AsyncAck, body: JSON) -> None:
        await ack()
        rid = str(body["actions"][0]["value"])
        state = self.requests[rid]
        state["signed"] += 1
        self.store.run(state["sql"][state["signed"]])
        self.spawn(self.respond(str(body["response_url"]), f"✍️ You signed {rid} ({state['signed']}/2)."))
        if state["signed"] == 2:
            self.spawn(self.execute(rid, state))

    async def respond(self, url: str, text: str) -> None:
        webhook = AsyncWebhookClient(url, session=self.session)
        for _ in range(self.quota.take("response_url", self.clicks_answered)):
            await webhook.send_dict(self.padded("response_url", {"text": text, "response_type": "ephemeral",
                                                                 "replace_original": False}))

    async def execute(self, rid: str, state: dict[str, Any]) -> None:
        name, ts, sql = state["name"], state["ts"], state["sql"]
        replies, updates = self.quota.take("reply"), self.quota.take("update")
        texts = [f"✅ {rid} approved by bob, carol: dry run and execution follow."] * (replies - 1)
        for text in texts:
            await self.reply(ts, text)
        for _ in range(updates - 1):
            await self.update(rid, ts, "EXECUTING")
        self.store.run(sql[3])
        patched = await self.kube.run(EXECUTE, name)
        self.store.run(sql[4])
        await self.kube.follow(name, int((patched.get("metadata") or {}).get("generation") or 0))
        self.store.run(sql[5])
        if updates:
            await self.update(rid, ts, "SUCCEEDED")
        if replies:
            await self.reply(ts, f"✅ {rid} succeeded: deployment/{name} restarted; verified.")
        del self.requests[rid]

    async def reply(self, ts: str, text: str) -> None:
        await self.slack.chat_postMessage(**self.padded("reply", {"channel": CHANNEL, "thread_ts": ts, "text": text}))

    async def update(self, rid: str, ts: str, status: str) -> None:
        text = f"⚙️ {rid} · kubectl rollout restart deployment -n crash · {status} · high"
        await self.slack.chat_update(**self.padded("update", {"channel": CHANNEL, "ts": ts, "text": text, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}}]}))


async def serve(args: argparse.Namespace, plan: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        floor = Floor(args, plan, session)
        app = web.Application()
        app.router.add_post("/api/v1/requests", floor.create)
        app.router.add_post("/slack/events", floor.events)
        app.router.add_get("/healthz", lambda _: _ok())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: _toggle(floor.store.census, args.census))
        await stop.wait()
        await runner.cleanup()


async def _ok() -> web.Response:
    return web.Response(text="ok")


def _toggle(census: Census, out: str | None) -> None:
    census.on = not census.on
    if not census.on and out:
        Path(out).write_text(json.dumps(dict(census.counts)))


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--plan", "--kubeconfig", "--slack-url", "--slack-token", "--db", "--token", "--signing-secret"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--census")
    args = parser.parse_args()
    asyncio.run(serve(args, json.loads(Path(args.plan).read_text())))


if __name__ == "__main__":
    main()
