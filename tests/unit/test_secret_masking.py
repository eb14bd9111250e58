"""Secrets never reach a log line or the terminal: not through a stdlib traceback, and not through a database
URL whose password has `:` or `@` in it or is given as `?password=` (issue: hardening, defect 8)."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
import structlog

from adapters.db.urls import mask_url
from bot.logs import configure_logging
from bot.settings import Settings

SECRET = "pa:ss@w0rd-7f3k"


def test_a_secret_inside_a_stdlib_traceback_is_masked() -> None:
    out = StringIO()
    configure_logging("json", "info", [SECRET], stream=out)
    try:
        raise ValueError(f"could not connect with password {SECRET}")
    except ValueError:
        logging.getLogger("some.library").exception("connect failed")
        structlog.get_logger("signoff").exception("db.connect_failed")
    text = out.getvalue()
    assert "Traceback" in text and "ValueError" in text  # the traceback is still there ...
    assert SECRET not in text  # ... without the secret
    assert text.count("***") >= 2


@pytest.mark.parametrize("url", [
    f"postgresql+asyncpg://signoff:{SECRET}@db.internal:5432/signoff",
    f"postgresql+asyncpg://signoff@db.internal:5432/signoff?password={SECRET}",
    "postgresql+asyncpg://signoff@db.internal:5432/signoff?password=pa%3Ass%40w0rd-7f3k",
])
def test_every_form_of_database_password_is_known_as_a_secret(url: str) -> None:
    settings = Settings(SIGNOFF_DATABASE_URL=url)
    assert SECRET in settings.secrets()
    masked = mask_url(url, settings.secrets())
    assert SECRET not in masked and "pa%3Ass" not in masked
    assert "db.internal" in masked and "***" in masked
