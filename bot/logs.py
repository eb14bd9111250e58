"""structlog set-up: stable event names, key=value data, JSON off a terminal, secrets masked."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_NOISY = ("slack_bolt", "slack_sdk", "discord", "aiohttp.access", "kubernetes", "urllib3", "alembic", "asyncio")


class SecretMasker:
    """A last line of defence: any secret value that reaches a log line is replaced."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s for s in secrets if len(s) >= 6]

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        for key, value in list(event.items()):
            event[key] = self._mask(value)
        return event

    def _mask(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {k: self._mask(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask(v) for v in value]
        return value


class _MaskingFormatter(logging.Formatter):
    """Masks the whole formatted record: the message, and the traceback and stack the formatter appends."""

    def __init__(self, masker: SecretMasker, fmt: str) -> None:
        super().__init__(fmt)
        self._masker = masker

    def format(self, record: logging.LogRecord) -> str:
        return str(self._masker._mask(super().format(record)))


def configure_logging(fmt: str = "console", level: str = "info", secrets: Iterable[str] = (),
                      stream: Any = None, *, cache: bool = False) -> None:
    """`cache`: each module's logger binds to this configuration on its first call and keeps it (the
    running bot: no lookup per log line). Off where the configuration changes later in the same process
    (tests, which capture logs by re-configuring)."""
    masker = SecretMasker(secrets)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        numeric = logging.INFO
    out = stream if stream is not None else sys.stderr
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(
        colors=out.isatty() if hasattr(out, "isatty") else False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            masker,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(out)
    handler.setFormatter(_MaskingFormatter(masker, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _NOISY:
        # At debug level everything speaks (the masker still applies); otherwise the SDKs only warn.
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
