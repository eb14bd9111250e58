"""Shared test plumbing: the app graph on a temporary database (`app`), the team policy (`policy`),
loopback servers (`loopback`) and each chat's world (`slack`, `discord`)."""

from __future__ import annotations

from testkit.support.app import MovableClock, hooked_app, make_settings, running_app, sqlite_url

__all__ = ["MovableClock", "hooked_app", "make_settings", "running_app", "sqlite_url"]
