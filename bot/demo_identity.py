"""`signoff demo`'s last scene: two clusters, and the cluster sees the person who asked (issue 19).

A second app on the demo's database (its requests go on from the first app's numbers), with a policy of its
own: `[execution] as = "requester"` and the clusters eu-1 (default) and us-1, each an in-process sandbox seeded
with the demo people's RBAC objects (group `sre` may change anything; dave@example.com may only read `prod`).
dave's request is refused in one sentence by the cluster's SubjectAccessReview; alice's request names
`--context us-1` and runs there as her.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TextIO

from adapters.console.repl import run_script
from bot.bootstrap import App, bootstrap
from bot.chats.console import attach_console
from bot.settings import Settings
from core.domain.policy_file import parse_policy

POLICY = """\
[execution]
as = "requester"

[clusters.eu-1]
default = true

[clusters.us-1]

[people.alice]
kubernetes = "alice@example.com"
kubernetes_groups = ["sre"]
groups = ["sre"]

[people.bob]
kubernetes = "bob@example.com"
kubernetes_groups = ["sre"]
groups = ["sre"]

[people.dave]
kubernetes = "dave@example.com"

[risk.medium]
quorum = 1
approvers = ["sre"]
"""

SCRIPT = """\
# --- two clusters, and the cluster sees the person: [execution] as = "requester", clusters eu-1 and us-1 ---
# the cluster's RBAC lets dave@example.com read prod but change nothing there: signoff asks it first
as dave
request rollout restart deployment/api -n prod
# alice is in sre; her request names the cluster, and every call for it impersonates her
as alice
request rollout restart deployment/api -n prod --context us-1
as bob
approve R-7
"""


async def identity_scene(settings: Settings, stream: TextIO,
                         until_verified: Callable[[App], Awaitable[None]]) -> None:
    policy = parse_policy(POLICY, "the demo's identity policy")
    async with bootstrap(settings, min_update_interval=0.0, policy=policy) as app:
        console = attach_console(app, stream)
        for line in SCRIPT.splitlines():
            await run_script(console, [line], app.settle, stream)
            await until_verified(app)
