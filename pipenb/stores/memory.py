"""``InMemoryStore`` and the default provider live in the core (the engine's
default needs them); this module keeps their old import path."""

from ..core.store import InMemoryStore, MemoryStoreProvider, default_provider

__all__ = ["InMemoryStore", "MemoryStoreProvider", "default_provider"]
