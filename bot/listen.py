"""The HTTP port, bound before anything else starts (standard library only, so it is quick to import).

`signoff run` binds its port first: a probe or a Slack request that arrives while the service is
starting waits in the listen backlog and is answered as soon as the service is ready, instead of
being refused. `/healthz` still answers 200 only once the whole service is up (docs/design.md,
"HTTP surface"). A port that is busy now may be free by then (the previous process still shutting
down), so it is tried again when the service is ready, where it fails as it always did.
"""

from __future__ import annotations

import errno
import socket

import structlog

from core.errors import SignoffError

log = structlog.get_logger(__name__)

BACKLOG = 128  # aiohttp's default


def bind_listener(host: str, port: int) -> socket.socket | None:
    """A listening, non-blocking TCP socket on (host, port), the first address `host` resolves to; None when
    the port is in use (the HTTP server binds it itself when the service is ready)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise SignoffError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                           "fix SIGNOFF_HTTP_HOST.") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses the port at once
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            log.info("http.port_busy", host=host, port=port)
            return None
        raise SignoffError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); fix SIGNOFF_HTTP_HOST "
                           "or SIGNOFF_HTTP_PORT (or PORT).") from None
    return sock
