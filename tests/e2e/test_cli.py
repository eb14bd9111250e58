"""The `signoff` command as a user runs it: a real subprocess, real files, the sandbox cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def signoff(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
    full_env.update({"SIGNOFF_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True, env=full_env,
        cwd=cwd, timeout=timeout, check=False,
    )


def test_demo_shows_the_whole_loop_and_exits_0(tmp_path: Path) -> None:
    result = signoff("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # the request and its card
    assert "R-1 posted for approval" in out and "Blast radius: 3 pods" in out
    # the refused self-approval, the duplicate and the two signatures
    assert "You asked for R-1, so you can't sign it" in out
    assert "You signed R-1 (▰▱ 1/2)" in out and "You already signed R-1" in out
    assert "You signed R-1 (▰▰ 2/2): quorum reached" in out
    # dry run, execution exactly once, result in the thread
    assert "server-side dry run passed" in out
    r1_timeline = out.split("Timeline of R-1")[1].split("last hash")[0]
    assert r1_timeline.count("executed: deployment/api restarted") == 1
    assert "↳ R-1 │ ✅ R-1 succeeded: deployment/api restarted" in out
    # verification: the card shows the rollout as it goes, the thread gets one result when it holds
    assert "↻ R-1 card: verifying · rolling out ▱▱▱ 3/3 updated · 0/3 available" in out
    assert r1_timeline.count("verified: deployment/api restarted") == 1
    r1_results = [line for line in out.splitlines() if line.startswith("    ↳ R-1 │ ✅ R-1 succeeded")]
    assert len(r1_results) == 1 and "verified in" in r1_results[0] and "3/3 pods ready" in r1_results[0]
    # refusal of text outside the allow-list, blocked missing target, audit
    assert "`exec` is not an operation signoff runs" in out and "Accepted forms" in out
    assert "R-2 blocked" in out and "nothing was changed" in out
    # the learning loop: alert → rules proposal → signature → execution → rating → offer → vote → playbook proposal
    assert "Proposed by: rules track" in out
    assert "How well did R-3 fix INC-1?" in out
    assert "Playbook PB-1 proposed from INC-1 (effectiveness 4/5)" in out
    assert "Your vote on PB-1 is counted; it is approved." in out
    assert "Proposed by: playbook track, playbook PB-1, similarity" in out
    assert "PB-1 [approved] effectiveness 4/5 · used: 1 proposed" in out
    # a restart whose new pods crash-loop fails with the pods and reasons named; the way back is proposed,
    # signed like any other request, and verified
    failed = next(line for line in out.splitlines() if line.startswith("    ↳ R-5 │ ❌ R-5 failed"))
    # The deadline is seen either in the Deployment's condition or by signoff's own clock, whichever comes first.
    deadline = ("ProgressDeadlineExceeded", "did not hold within progressDeadlineSeconds (2 s)")
    assert any(seen in failed for seen in deadline), failed
    assert "CrashLoopBackOff (restarted" in failed
    assert "↳ R-5 │ ↩️ R-6 proposes the way back: `kubectl rollout undo deployment/web -n prod`" in out
    assert "Proposed by: way back track: R-5 failed after" in out
    assert "You signed R-6 (▰▰ 2/2): quorum reached" in out
    undone = next(line for line in out.splitlines() if line.startswith("    ↳ R-6 │ ✅ R-6 succeeded"))
    assert "rolled back to revision 1" in undone and "verified in" in undone
    # break glass: R-7 runs on bob's one signature, the thread's review carries Countersign / Dispute,
    # carol (a lead) countersigns and the review closes
    assert "🚨 You broke the glass on R-7" in out
    assert "↳ R-7 │ 🚨 break glass by bob: checkout errors at 3am, nobody answers the page" in out
    assert "[Countersign]  [Dispute]" in out and "Could have signed: carol, dave, erin" in out
    assert "Break glass: 🚨 break glass by bob" in out
    assert next(line for line in out.splitlines() if line.startswith("    ↳ R-7 │ ✅ R-7 succeeded"))
    assert "1 open break glass review(s):" in out
    assert "↳ R-7 │ ✅ carol countersigned the break glass on R-7; the review is closed." in out
    assert "timeline intact" in out
    # two clusters, and the cluster sees the person: the sandbox's RBAC refuses dave in prod, in one sentence;
    # alice's request names us-1 and runs there as her
    assert ("The cluster's RBAC does not allow dave (dave@example.com) to patch deployments.apps/api in prod, "
            "so signoff will not do it for them.") in out
    assert "│ Cluster: us-1 · prod/api" in out
    assert "--context us-1 --as alice@example.com --as-group sre" in out
    assert "↳ R-7 │ ✅ R-7 succeeded: deployment/api restarted" in out
    assert "Traceback" not in out + result.stderr


def test_scripted_console_reads_stdin_line_by_line(tmp_path: Path) -> None:
    script = "request cordon node-2\nas bob\napprove R-1\nas carol\napprove 1\nstatus R-1\nquit\nhelp\n"
    result = signoff("console", stdin=script, cwd=tmp_path,
                     env={"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "R-1 is succeeded" in result.stdout
    assert "commands:" not in result.stdout.lower().split("quit")[-1]  # nothing after quit ran
    timeline = signoff("timeline", "R-1", cwd=tmp_path,
                       env={"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"})
    assert timeline.returncode == 0
    assert "executed" in timeline.stdout and "cordoned" in timeline.stdout
    playbooks = signoff("playbooks", cwd=tmp_path, env={"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"})
    assert playbooks.returncode == 0 and "No playbooks yet" in playbooks.stdout
    missing = signoff("timeline", "R-99", cwd=tmp_path,
                      env={"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"})
    assert missing.returncode == 2 and "no request R-99" in missing.stderr


def test_policy_file_error_names_file_line_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "signoff.toml"
    policy.write_text('[people.alice]\nslack = "U1"\n\n[risk.high]\nquorum = "two"\n')
    result = signoff("check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "signoff.toml, line 5 (risk.high.quorum)" in result.stderr
    assert "Traceback" not in result.stderr
    run = signoff("run", cwd=tmp_path, env={"SIGNOFF_API_TOKEN": "t0ken-for-tests-01"})
    assert run.returncode == 2 and "line 5" in run.stderr


def test_check_config_prints_what_is_configured(tmp_path: Path) -> None:
    result = signoff("check-config", cwd=tmp_path, env={"SIGNOFF_API_TOKEN": "s3cret-token-value"})
    assert result.returncode == 0, result.stderr
    assert "built-in policy" in result.stdout and "http api: on" in result.stdout
    assert "s3cret-token-value" not in result.stdout + result.stderr


def test_check_config_reads_schedules_freezes_and_the_night_keys_as_a_command(tmp_path: Path) -> None:
    """The real command, with a schedule and a freeze to read and every section the night work added: it printed a
    Traceback ("asyncio.run() cannot be called from a running event loop") before, only tests calling it directly
    passed."""
    (tmp_path / "primary.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        "DTSTART:20200101T000000Z\r\nDTEND:20200102T000000Z\r\nRRULE:FREQ=DAILY\r\nSUMMARY:alice\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n")
    (tmp_path / "signoff.toml").write_text(
        '[people.alice]\ngroups = ["sre"]\nemail = "alice@example.com"\n'
        '[people.bob]\ngroups = ["sre", "leads"]\n'
        '[risk.critical]\nquorum = 2\napprovers = ["sre", "leads"]\nconfirm = true\n'
        f'[oncall.primary]\nical = "{tmp_path / "primary.ics"}"\n'
        '[breakglass]\nwho = ["oncall.primary", "sre"]\nreviewers = ["leads"]\n'
        '[alertmanager]\nsilence = true\n'
        '[[freeze]]\nname = "Black Friday"\nstart = "2026-11-27T00:00:00Z"\nend = "2026-11-30T08:00:00Z"\n')
    result = signoff("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "on call oncall.primary: alice (from " in result.stdout, result.stdout
    assert "freeze Black Friday: raise, 2026-11-27 00:00 to 2026-11-30 08:00" in result.stdout


def test_check_config_warns_about_every_level_whose_quorum_can_be_impossible(tmp_path: Path) -> None:
    (tmp_path / "signoff.toml").write_text(
        '[people.alice]\ngroups = ["sre"]\n[people.bob]\ngroups = ["sre"]\n'
        '[risk.medium]\nquorum = 1\napprovers = ["sre"]\n'
        '[risk.high]\nquorum = 2\napprovers = ["sre"]\nescalate_after = "10m"\nescalate_to = ["leads"]\n'
        '[risk.critical]\nquorum = 3\napprovers = ["sre"]\n[groups.leads]\nslack = "S0LEADS"\n')
    result = signoff("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    # low takes medium's approvers and the built-in quorum 1: two SREs suffice. high: each SRE's own request
    # has one possible signer for a quorum of 2; critical can never be met.
    assert [w.split(":")[1].strip() for w in warnings] == ["high", "critical"], result.stdout
    assert "exactly 2 people may sign (alice, bob)" in warnings[0]
    assert "only 2 people may sign" in warnings[1]
    assert "escalated to leads after 10m" in result.stdout and "group leads: slack S0LEADS" in result.stdout


def test_run_refuses_without_anything_to_serve(tmp_path: Path) -> None:
    result = signoff("run", cwd=tmp_path)
    assert result.returncode == 2
    for name in ("SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN", "SIGNOFF_API_TOKEN"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_database_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    port = _closed_port()
    result = signoff("run", cwd=tmp_path, env={
        "SIGNOFF_API_TOKEN": "t0ken-for-tests-01",
        "SIGNOFF_DATABASE_URL": f"postgresql+asyncpg://nobody@127.0.0.1:{port}/nothing",
    })
    assert result.returncode == 2
    assert "database" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_cluster_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    port = _closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: abc}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    result = signoff("run", cwd=tmp_path, env={"SIGNOFF_API_TOKEN": "t0ken-for-tests-01", "KUBECONFIG": str(kubeconfig),
                                               "SIGNOFF_KUBE_TIMEOUT": "2"})
    assert result.returncode == 2, result.stderr
    assert "kubernetes api server" in result.stderr.lower()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("audit", "verify"), ("db", "upgrade")])
def test_database_commands_on_a_fresh_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = signoff(*args, cwd=tmp_path, env={"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"})
    assert result.returncode == 0, result.stderr
