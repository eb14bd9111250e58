"""`signoff demo`: the whole loop, scripted, on embedded defaults.

A temporary SQLite file, the sandbox API server, the built-in policy and the console
adapter: the same services and executor that `signoff run` uses, driven by a script.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from adapters.console.repl import run_script
from bot.bootstrap import App, bootstrap
from bot.chats.console import attach_console
from bot.database import audit_verify
from bot.demo_identity import identity_scene
from bot.settings import Settings
from core.domain.approvals import RequestStatus
from core.domain.breakglass_review import BreakglassRules
from core.domain.policy import Person, Policy

CRASH = "Pod prod/{} (api) is in waiting state (reason: CrashLoopBackOff)."
DEMO_SCRIPT = """\
# alice is on call: the prod API is slow, she asks for a restart and says it is high risk
as alice
request rollout restart deployment/api -n prod risk=high reason="p99 latency above 2s since 10:02"
# alice cannot sign her own request
approve R-1
# bob signs: 1 of 2
as bob
approve R-1
# one person, one signature
approve R-1
# carol signs: quorum reached, server-side dry run, then exactly one execution
as carol
approve R-1
# a late click changes nothing
approve R-1
# anyone can ask the thread for the history
thread R-1 timeline
# text outside the allow-list is refused at once, with the accepted forms, and nothing is stored
request kubectl exec -it api-0 -- sh
# a target that does not exist is refused at once (its dry run says NotFound): nobody is asked to sign
request scale deployment/ghost --replicas=2 -n prod
# one deleted after the request was made ends as blocked when it runs, nothing changed
request scale deployment/worker --replicas=2 -n prod
!delete deployment/worker -n prod
as dave
approve R-2
# --- learning: an alert becomes an incident, the fix becomes a playbook ---
# Alertmanager reports a crash-looping API pod; no playbook yet, so the expert rules propose a restart
alert KubePodCrashLooping namespace=prod pod={pod_a} container=api severity=warning description="{crash_a}"
as bob
approve R-3
# the fix worked: bob rates it 4 (the rating prompt's button); the incident resolves and a playbook is offered
rate INC-1 4
# erin approves the playbook with a reaction on the offer
as erin
react PB-1 ✅
# the same alert fires again on another pod: the approved playbook proposes the fix, with its similarity
alert KubePodCrashLooping namespace=prod pod={pod_b} container=api severity=critical description="{crash_b}"
playbooks
timeline INC-1
# --- verification: signoff follows each operation to its effect ---
# the sandbox is told that deployment/web's next pods will crash-loop (its progressDeadlineSeconds: 2)
!fail deployment/web -n prod CrashLoopBackOff 2
as alice
request rollout restart deployment/web -n prod reason="pick up the new feature flags"
as bob
approve R-5
# the rollout never completes: signoff names the pods and their reasons, and proposes the way back
as bob
approve R-6
as carol
approve R-6
thread R-6 timeline
# --- break glass: nobody can sign in time (the demo's [breakglass] lets the sre on call do it at once) ---
as alice
request rollout restart deployment/api -n prod risk=high reason="checkout errors, the quorum is asleep"
# bob is an sre: the request runs on his one signature, and the leads owe a review
as bob
breakglass R-7 reason="checkout errors at 3am, nobody answers the page"
breakglass
# carol, a lead, countersigns: the review closes
as carol
countersign R-7
status R-7
"""

# The built-in policy, with a roster (everyone may still sign) and [breakglass] for the scene above.
DEMO_POLICY = Policy(
    people={name: Person(name=name, groups=frozenset(groups)) for name, groups in (
        ("alice", ("sre",)), ("bob", ("sre",)), ("carol", ("sre", "leads")), ("dave", ("dev",)),
        ("erin", ("leads",)))},
    breakglass=BreakglassRules(who=("sre",), after=timedelta(0), reviewers=("leads",)),
)


DEMO_READY_DELAY_S = 1.0
FAIL = "sandbox.signoff.dev/fail"


def _inject_fault(app: App, line: str, stream: TextIO) -> None:
    """`!fail deployment/web -n prod CrashLoopBackOff 2`: the workload's next pods never become Ready."""
    _, target, _, namespace, fault, deadline = line.split()
    obj = app.sandbox.get("deployment", namespace, target.split("/", 1)[1])
    obj["metadata"].setdefault("annotations", {})[FAIL] = fault
    obj["spec"]["progressDeadlineSeconds"] = int(deadline)
    app.sandbox.put(obj)
    stream.write(f"(sandbox: {target}'s new pods will be {fault}; progressDeadlineSeconds={deadline})\n")


async def _until_verified(app: App, limit_s: float = 60.0) -> None:
    """Wait while a request is verifying (the demo's rollouts take a second or two), delivering as it goes."""
    loop = asyncio.get_running_loop()
    until = loop.time() + limit_s
    while loop.time() < until:
        verifying = await app.db.read(lambda uow: uow.requests.with_status([RequestStatus.verifying], limit=1))
        if not verifying:
            return
        await asyncio.sleep(app.verification.wait_s(0.5))
        await app.settle()


async def run_demo(settings: Settings, out: TextIO | None = None, script: str = DEMO_SCRIPT) -> int:
    stream = out or sys.stdout
    with tempfile.TemporaryDirectory(prefix="signoff-demo-") as tmp:
        database = Path(tmp) / "demo.db"
        demo_settings = settings.model_copy(update={
            "database_url": f"sqlite+aiosqlite:///{database}",
            "cluster": "sandbox",
            "policy_path": None,
            "api_token": None,
        })
        stream.write("signoff demo: sandbox cluster, temporary SQLite database, built-in policy "
                     "(anyone but the requester may sign; high risk needs 2 signatures), with a roster "
                     "and [breakglass] (sre may break glass, leads review)\n")
        async with bootstrap(demo_settings, min_update_interval=0.0, policy=DEMO_POLICY) as app:
            console = attach_console(app, stream)
            # New pods take a second to become Ready, so each rollout shows its progress on the card.
            app.sandbox.set_ready_delay(DEMO_READY_DELAY_S)
            for template in script.splitlines():
                if template.startswith("!fail "):
                    _inject_fault(app, template, stream)
                    continue
                if template.startswith("!delete "):
                    _, target, _, namespace = template.split()
                    app.sandbox.delete_object(target.split("/", 1)[0], namespace, target.split("/", 1)[1])
                    stream.write(f"(sandbox: {target} -n {namespace} deleted by someone else)\n")
                    continue
                # Pods change name on every rollout, so a line names whichever api pods run right now.
                pods = sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "prod", "app=api"))
                line = template.format(pod_a=pods[0], pod_b=pods[-1], crash_a=CRASH.format(pods[0]),
                                       crash_b=CRASH.format(pods[-1]))
                await run_script(console, [line], app.settle, stream)
                await _until_verified(app)
        if script == DEMO_SCRIPT:  # the same database, with a policy of its own (demo_identity.py)
            await identity_scene(demo_settings, stream, _until_verified)
        stream.write("\n$ signoff audit verify\n")
        code = await audit_verify(demo_settings, stream)
        stream.write("\ndemo finished: every step above ran against the sandbox Kubernetes API through the "
                     "same executor `signoff run` uses.\n")
        stream.flush()
    return code
