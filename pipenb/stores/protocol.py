"""The ``DataStore`` protocol lives in the core (``pipenb.core.store``); this keeps the old import path."""

from ..core.store import DataStore, ProviderBase, StoreBase

__all__ = ["DataStore", "ProviderBase", "StoreBase"]
