"""The command line never prints a database password, whatever its form, and answers a bad URL in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import signoff

SECRET = "pa:ss@w0rd-7f3k"
URLS = [
    f"postgresql+asyncpg://signoff:{SECRET}@127.0.0.1:1/signoff",
    f"postgresql+asyncpg://signoff@127.0.0.1:1/signoff?password={SECRET}",
]


@pytest.mark.parametrize("url", URLS)
def test_check_config_masks_the_password(url: str, tmp_path: Path) -> None:
    result = signoff("check-config", env={"SIGNOFF_DATABASE_URL": url}, cwd=tmp_path)
    assert SECRET not in result.stdout + result.stderr and "w0rd" not in result.stdout + result.stderr
    assert "127.0.0.1:1" in result.stdout and "***" in result.stdout


@pytest.mark.parametrize("url", URLS)
def test_an_unreachable_database_is_one_masked_sentence(url: str, tmp_path: Path) -> None:
    result = signoff("audit", "verify", env={"SIGNOFF_DATABASE_URL": url}, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert SECRET not in result.stdout + result.stderr and "w0rd" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("signoff: "), result.stderr[-2000:]
