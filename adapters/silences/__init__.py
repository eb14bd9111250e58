"""Alertmanager silences (API v2) behind `core.ports.Silencer`."""
