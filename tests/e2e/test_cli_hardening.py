"""The command line against what an outside audit tried (issue 18, items 9, 10 and 12): short tokens, passwords
in URLs, a malformed database URL, and policy files that are empty, loosely typed, out of bounds or start with a
BOM. Each is answered in one sentence that names the setting or the field and what works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import signoff

LONG_TOKEN = "a-long-enough-api-token-0123"


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("signoff: "), stderr[-2000:]
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("command", [("check-config",), ("run",)])
def test_a_short_api_token_is_refused_at_start_up(command: tuple[str, ...], tmp_path: Path) -> None:
    result = signoff(*command, cwd=tmp_path, env={"SIGNOFF_API_TOKEN": "a"}, timeout=60)
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert "SIGNOFF_API_TOKEN" in line and "16 characters" in line and "openssl rand -hex 32" in line


def test_check_config_masks_passwords_in_every_url(tmp_path: Path) -> None:
    env = {"SIGNOFF_API_TOKEN": LONG_TOKEN, "SIGNOFF_LLM_URL": "https://llm:llm-pass-77@llm.example/v1",
           "SLACK_BOT_TOKEN": "xoxb-bot-token-for-tests", "SLACK_SIGNING_SECRET": "signing-secret-for-tests",
           "SLACK_API_URL": "https://proxy:slack-pass-88@slack-proxy.example/api/"}
    result = signoff("check-config", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "llm-pass-77" not in out and "slack-pass-88" not in out
    assert "https://llm:***@llm.example/v1" in result.stdout
    assert "https://proxy:***@slack-proxy.example/api/" in result.stdout


@pytest.mark.parametrize("url", ["postgresql+asyncpg://u:pw-secret@127.0.0.1:notaport/db",
                                 "postgresql+asyncpg://u:pw-secret@127.0.0.1:99999/db", "not a url at all"])
@pytest.mark.parametrize("command", [("audit", "verify"), ("check-config",)])
def test_a_malformed_database_url_is_one_sentence(url: str, command: tuple[str, ...], tmp_path: Path) -> None:
    result = signoff(*command, cwd=tmp_path, env={"SIGNOFF_DATABASE_URL": url}, timeout=60)
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert "SIGNOFF_DATABASE_URL" in line and "pw-secret" not in line
    assert "postgresql+asyncpg://user:password@host:5432/name" in line


def test_an_empty_policy_file_is_a_loud_warning(tmp_path: Path) -> None:
    (tmp_path / "signoff.toml").write_text("# nothing yet\n")
    result = signoff("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "signoff.toml (anyone may sign)" in result.stdout
    warning = next(line for line in result.stdout.splitlines() if line.startswith("warning:"))
    assert "signoff.toml" in warning and "no [people]" in warning and "anyone may sign" in warning
    # `signoff run` says it as an error-level log line too (checked below through its log).


@pytest.mark.parametrize(("text", "field", "words"), [
    ('[risk.high]\nquorum = true\n', "risk.high.quorum", "integer"),
    ('[risk.high]\nquorum = "2"\n', "risk.high.quorum", "integer"),
    ('[requests]\nmax_replicas = 5.0\n', "requests.max_replicas", "integer"),
    ('[playbooks]\nsimilarity = "0.9"\n', "playbooks.similarity", "number"),
    ('[requests]\nprotected_namespaces = "kube-system"\n', "requests.protected_namespaces", "list"),
    ('[requests]\nexpire_after = "99999999d"\n', "requests.expire_after", "30d"),
    ('[requests]\nexpire_after = 1e300\n', "requests.expire_after", "30d"),
    ('[verify]\ntimeout = "99999999d"\n', "verify.timeout", "1d"),
    ('[people.alice]\ngroups = ["sre"]\n[risk.high]\nquorum = 1\napprovers = ["sre"]\n'
     'escalate_after = "9999999999d"\nescalate_to = ["sre"]\n', "risk.high.escalate_after", "30d"),
])
def test_policy_types_and_durations_are_strict(text: str, field: str, words: str, tmp_path: Path) -> None:
    (tmp_path / "signoff.toml").write_text(text)
    result = signoff("check-config", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    line = one_sentence(result.stderr)
    assert f"({field})" in line and words in line, line


def test_a_policy_file_starting_with_a_bom_is_read(tmp_path: Path) -> None:
    (tmp_path / "signoff.toml").write_bytes("\ufeff[people.alice]\ngroups = [\"sre\"]\n".encode())
    result = signoff("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "signoff.toml (1 people)" in result.stdout


def test_signoff_run_with_an_empty_policy_file_says_anyone_may_sign(tmp_path: Path) -> None:
    """`signoff run` says it in its log at start-up, not only check-config (issue 18, item 9)."""
    from tests.e2e.test_http_api import _service

    policy = tmp_path / "empty.toml"
    policy.write_text("")
    service = _service(tmp_path, SIGNOFF_POLICY=str(policy))
    _base, process, log = next(service)
    process.terminate()
    process.wait(timeout=20)
    service.close()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [warning] = [line for line in lines if line["event"] == "policy.anyone_may_sign"]
    assert warning["level"] == "warning" and "empty.toml has no [people]" in warning["warning"]
