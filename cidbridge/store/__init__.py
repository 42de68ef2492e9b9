"""Durable storage: the SQLite call log, its retention, and its CSV export."""

from cidbridge.store.calllog import CALL_COLUMNS, CallLog, CallQuery, StoreError

__all__ = ["CALL_COLUMNS", "CallLog", "CallQuery", "StoreError"]
