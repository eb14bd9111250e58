"""Impersonation headers as the API server reads them (`connect.impersonating`)."""

from __future__ import annotations

from typing import Any

import urllib3

# Several groups go out as several `Impersonate-Group` headers, as kubectl's `--as-group` sends them: the client
# keeps one value per header name, so they travel joined by a newline (never legal in a header) and are split
# into separate headers just before the request is sent.
GROUP_HEADER = "Impersonate-Group"
JOIN = "\n"


class SeparateGroups:
    """Wraps the client's urllib3 pool manager: one joined `Impersonate-Group` value becomes one header each."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        if headers and GROUP_HEADER in headers:
            split = urllib3.HTTPHeaderDict()
            for key, value in headers.items():
                if key == GROUP_HEADER:
                    for group in str(value).split(JOIN):
                        split.add(key, group)
                else:
                    split[key] = value
            headers = split
        return self._inner.request(method, url, *args, headers=headers, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def separate_groups(api_client: Any) -> None:
    """Let a client send several `Impersonate-Group` headers (its transport sends them; nothing is sent here)."""
    transport = api_client.rest_client
    transport.pool_manager = SeparateGroups(transport.pool_manager)
