"""Durable storage: the SQLite call log."""

from cidbridge.store.calllog import CallLog, StoreError

__all__ = ["CallLog", "StoreError"]
