"""The `signoff` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from pydantic import ValidationError

from bot.logs import configure_logging
from bot.settings import Settings
from core.chat.breakglass_texts import rules_line as breakglass_rules_line
from core.chat.cards import timeline_text
from core.chat.learning_texts import playbooks_text
from core.domain.ids import IncidentId, parse_subject
from core.domain.policy import format_duration
from core.errors import NotFound, SignoffError

if TYPE_CHECKING:
    from adapters.db.database import SqlUnitOfWork
    from core.domain.events import TimelineEvent

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signoff",
        description="Multi-party approval of Kubernetes operations from Slack and Discord.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    sub.add_parser("demo", help="the whole loop, scripted, on embedded defaults")
    sub.add_parser("console", help="an interactive local chat (sandbox cluster unless SIGNOFF_CLUSTER is set)")
    sub.add_parser("run", help="the service: Slack, Discord and the HTTP server")
    timeline = sub.add_parser("timeline", help="print the timeline of a request (R-…) or incident (INC-…)")
    timeline.add_argument("id")
    audit = sub.add_parser("audit", help="audit the timeline")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="verify|export|rekey")
    verify = audit_sub.add_parser("verify", help="re-compute the hash chain; exit 1 naming the first bad event")
    verify.add_argument("--file", metavar="F", help="verify an export (`signoff audit export`) offline, without the "
                                                      "database")
    export = audit_sub.add_parser("export", help="print the chain as JSON lines (or CEF), each event with its hashes")
    export.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after this seq")
    export.add_argument("--format", choices=("jsonl", "cef"), default="jsonl", dest="fmt")
    audit_sub.add_parser("rekey", help="after turning on or changing SIGNOFF_AUDIT_KEY (signoff stopped): seal the "
                                       "chain so far and go on with the new key (the old one in "
                                       "SIGNOFF_AUDIT_PREVIOUS_KEY, if there was one)")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="upgrade")
    db_sub.add_parser("upgrade", help="apply migrations")
    sub.add_parser("check-config", help="validate settings and the policy file, print what is configured")
    sub.add_parser("playbooks", help="list playbooks with status, effectiveness and use")
    sandbox = sub.add_parser("sandbox", help="serve the sandbox cluster until stopped; writes a kubeconfig for kubectl")
    sandbox.add_argument("--port", type=int, default=6443, help="the HTTPS port (0: any free port); default 6443")
    sandbox.add_argument("--kubeconfig", default=None, help="where to write the kubeconfig (default: in the temp dir)")
    sandbox.add_argument("--clusters", default=None,
                         help="several independent clusters, one kubeconfig context each: --clusters eu-1,us-1")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(p) for p in error["loc"])
        print(f"signoff: setting {name}: {str(error['msg']).removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    quiet = args.command in ("demo", "console", "timeline", "audit", "check-config", "playbooks", "sandbox")
    level = settings.log_level if "log_level" in settings.model_fields_set or not quiet else "error"
    configure_logging(settings.effective_log_format, level, settings.secrets(), cache=True)
    if args.command == "sandbox":
        # The server runs in its own thread and loop; the main thread waits for SIGINT/SIGTERM.
        from pathlib import Path

        from adapters.kubernetes.sandbox.standalone import serve
        from bot.fleet import sandbox_clusters
        path = Path(args.kubeconfig) if args.kubeconfig else None
        try:
            names = sandbox_clusters(args.clusters)
        except SignoffError as exc:
            print(f"signoff: {exc.message}", file=sys.stderr)
            return 2
        return serve(port=args.port, kubeconfig_path=path, out=sys.stdout, clusters=names)
    try:
        if args.command in ("run", "console") or getattr(args, "audit_command", None) == "rekey":
            from bot.database import sole_process

            with sole_process(settings):
                return asyncio.run(_dispatch(args, settings))
        return asyncio.run(_dispatch(args, settings))
    except SignoffError as exc:
        print(f"signoff: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    # Each command imports what it needs when asked for: the long-running ones pull in the HTTP server and the
    # chat SDKs, which the one-shot commands (timeline, audit, playbooks…) should not wait for, and `run`
    # binds its port before importing the rest (start-up time; bot/listen.py says why).
    command = args.command
    if command == "run":
        from bot.listen import bind_listener

        # Settings that cannot run are reported as such, not as a busy port (run_service checks them too).
        problem = settings.missing_for_run() or settings.slack_problem()
        if problem:
            raise SignoffError(problem)
        listener = bind_listener(settings.http_host, settings.listen_port)
        try:
            from bot.database import ensure_audit_key

            await ensure_audit_key(settings)
            from bot.service import run_service
        except BaseException:
            if listener is not None:
                listener.close()
            raise
        return await run_service(settings, listener=listener)
    if command == "demo":
        from bot.demo import run_demo
        return await run_demo(settings)
    if command == "console":
        from bot.chats.console import run_console
        from bot.database import ensure_audit_key

        await ensure_audit_key(settings)
        return await run_console(settings)
    if command == "timeline":
        return await _timeline(settings, args.id)
    from bot.database import audit_verify, open_database

    if command == "audit" and args.audit_command == "verify" and args.file:
        from pathlib import Path

        from bot.audit_file import verify_file
        return verify_file(Path(args.file), settings.audit_key_bytes)
    if command == "audit" and args.audit_command == "export":
        from bot.audit_export import audit_export
        return await audit_export(settings, after=max(args.after, 0), fmt=args.fmt)
    if command == "audit":
        if args.audit_command == "rekey":
            from bot.database import audit_rekey
            return await audit_rekey(settings)
        return await audit_verify(settings)
    if command == "db":
        async with open_database(settings):
            print("database is up to date")
        return 0
    if command == "check-config":
        # It reads the schedules' feeds once with a loop of its own (bot/calendars.py): not on this one.
        return await asyncio.to_thread(check_config, settings)
    if command == "playbooks":
        async with open_database(settings) as db:
            rules = settings.load_policy().playbooks
            print(playbooks_text(await db.read(lambda uow: uow.playbooks.all()), rules))
        return 0
    raise SignoffError(f"unknown command {command}")


async def _timeline(settings: Settings, subject: str) -> int:
    from bot.database import open_database

    key = parse_subject(subject)

    def read(uow: SqlUnitOfWork) -> list[TimelineEvent]:
        if isinstance(key, IncidentId):
            return uow.timeline.for_incident(key)
        if uow.requests.get(key) is None:
            raise NotFound(f"no request {key}")
        return uow.timeline.for_request(key)

    async with open_database(settings) as db:
        events = await db.read(read)
    print(timeline_text(key, events))
    return 0


def check_config(settings: Settings) -> int:
    from adapters.db.urls import mask_url
    from bot.calendars import calendar_lines
    from core.ports import SystemClock

    policy = settings.load_policy()
    url = mask_url(settings.database_url, settings.secrets())
    lines = [
        f"database: {url}",
        f"policy: {policy.source}"
        + (f" ({len(policy.people)} people)" if policy.people else " (anyone may sign)"),
    ]
    for risk, rule in sorted(policy.risk.items(), key=lambda item: item[0].rank):
        paging = f", pages {', '.join(rule.page)}" if rule.page else ""
        if rule.escalate_after is not None:
            paging += f", escalated to {', '.join(rule.escalate_to)} after {format_duration(rule.escalate_after)}"
        if rule.remind_before_expiry is not None:
            paging += f", reminded {format_duration(rule.remind_before_expiry)} before expiry"
        lines.append(f"  {risk}: quorum {rule.quorum}, signed by {rule.describe_approvers()}{paging}")
    for name, handles in sorted(policy.groups.items()):
        lines.append(f"  group {name}: slack {handles.slack or '(none)'}, discord {handles.discord or '(none)'}")
    lines.append(f"  requests expire after {int(policy.requests.expire_after.total_seconds())} s; protected "
                 f"namespaces: {', '.join(policy.requests.protected_namespaces) or 'none'}; max replicas "
                 f"{policy.requests.max_replicas}")
    lines.append(f"  playbooks: quorum {policy.playbooks.quorum}, signed by "
                 f"{policy.playbooks.sign_rule.describe_approvers()}, similarity {policy.playbooks.similarity}")
    if policy.rules:
        lines.append(f"  {len(policy.rules)} expert rule(s) from the policy file")
    lines.append(breakglass_rules_line(policy.breakglass))
    lines.extend(calendar_lines(policy, SystemClock()))
    lines.append(f"cluster: {settings.cluster}")
    from bot.fleet import check_config_clusters

    lines.extend(check_config_clusters(settings, policy))
    if settings.slack_enabled:
        mode = "Socket Mode" if settings.slack_app_token else "HTTP mode on POST /slack/events"
        lines.append(f"slack: on, {mode}, API {mask_url(settings.slack_api_url)}, channel "
                     f"{settings.slack_channel or '(none)'}")
    else:
        lines.append("slack: off (set SLACK_BOT_TOKEN)")
    if settings.discord_enabled:
        lines.append(f"discord: on, channel {settings.discord_channel_id or '(none)'}, guild "
                     f"{settings.discord_guild_id or '(global commands)'}")
    else:
        lines.append("discord: off (set DISCORD_BOT_TOKEN)")
    lines.append("http api: " + ("on (bearer token set)" if settings.api_token else "off (set SIGNOFF_API_TOKEN)"))
    lines.append(f"http: {settings.http_host}:{settings.listen_port}")
    lines.append("llm advisor: " + (f"{mask_url(settings.llm_url)} model {settings.llm_model or '(default)'}"
                                    if settings.llm_url else "off"))
    # Warnings, not errors: the rest of the policy works, and an admin may be adding people.
    open_warning = policy.open_warning()
    if open_warning is not None:
        lines.append(f"warning: {open_warning}")
    lines.extend(f"warning: {warning}" for warning in policy.quorum_warnings())
    print("\n".join(lines))
    problem = settings.slack_problem()
    if problem:
        print(f"problem: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
