"""Run stores as the engine sees them: the ``DataStore`` protocol, its declared
capabilities, the in-memory store and the process-wide default provider.

The engine relies on a few optional capabilities (a durable store writes a
cursor checkpoint at every commit; a store that can ``compare_and_set``
commits a stage by swapping in the state the engine already merged; a
provider that can ``release`` frees a finished run's store). Each is declared
by ``StoreBase`` / ``ProviderBase`` with a safe default, never sniffed: a
store written against the bare four-method protocol is wrapped once, when the
factory opens it, by ``as_store`` (and a plain ``store_factory`` callable by
``as_provider``).

Synchronous on purpose: a stage commit is a handful of in-memory merges (or
one SQLite transaction), and keeping it sync means a commit can never be
interleaved with another coroutine halfway through.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, ContextManager, Iterator, Mapping, NamedTuple, Protocol, runtime_checkable

from .errors import StoreError
from ._listeners import Listeners
from .kept import ended_of, fork_source_of, is_hidden
from .lifecycle import PAUSED
from .state import EMPTY, freeze, is_mapping, merge, run_note


@runtime_checkable
class DataStore(Protocol):
    """What every run store does. ``StoreBase`` adds the capabilities, with defaults."""

    def get(self) -> Mapping[str, Any]:
        """The whole state as a read-only snapshot, in O(1)."""

    def set(self, patch: Mapping[str, Any]) -> None:
        """Deep-merge ``patch`` (``DELETE`` removes a key)."""

    def transaction(self) -> ContextManager[Any]:
        """Writes inside apply all or nothing."""

    def subscribe(self, listener: Callable[[Mapping[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(state)`` after each commit; returns the unsubscribe function."""


class StoreBase:
    """The capabilities the engine may use, declared with their defaults."""

    durable: bool = False
    """True when the state outlives the process (SQLite): every commit also records where to continue."""

    def __init__(self) -> None:
        self._listeners = Listeners()  # who hears each commit (``subscribe``)

    def subscribe(self, listener: Callable) -> Callable[[], None]:
        """Call ``listener(state)`` after each commit; returns the unsubscribe function."""
        return self._listeners.add(listener)

    def compare_and_set(self, expected, new) -> bool:
        """Replace the whole state with ``new`` if it is still ``expected``; False when not done.

        The engine has already merged a stage's patches into ``new``; a store
        that can swap it in commits without merging twice. The default never does.
        """
        return False

    keeps_history: bool = False
    """True when the store persists the run's per-stage history rows with its commits.

    The engine then hands each stage's row to ``append_history`` inside the
    stage's ``transaction()``, so the row and the state it produced are kept
    (or lost) together, and a resumed run can show the history of the stages
    that ran before. A store that says False keeps no history: the engine
    keeps it in memory only, and a resumed run starts with none.
    """

    def append_history(self, row: tuple) -> None:
        """Keep ``row`` with the current commit (inside a transaction: when the outermost one commits).

        A row is ``(seq, address, stage_id, label, patches, decision, started,
        duration)``; seq -1 is the run's initial state (``patches ==
        (initial_state,)``). Rows are opaque to the store except ``seq``, which
        orders them and replaces an earlier row of the same seq. Only stores
        that declare ``keeps_history`` are asked; the default refuses, naming
        the store class, so a caller that forgot to check fails loudly.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no history (keeps_history is False)")

    keeps_artifacts: bool = False
    """True when the store writes the run's artifacts with its commits (SPEC 15).

    The engine then hands each stage's new or replaced artifacts to
    ``write_artifacts`` inside the stage's ``transaction()``; a resume reads
    them back with ``load_artifacts`` and a fork shares them with
    ``copy_artifacts``. A store that says False gets the artifacts as a
    bundle in the checkpoint when the registry releases a paused run.
    """

    def write_artifacts(self, seq: int, items: list) -> dict[str, str]:
        """Keep ``items`` (``(key, value, durable)``) with the current commit; returns key -> why for those not
        written (``durable`` False, or cannot be pickled), which a later read names instead of giving ``None``.

        ``seq`` is the history seq the stage commits with (the seq before the next record when it commits none),
        so ``load_artifacts(before=s)`` gives the artifacts as they were before record ``s``. The default refuses,
        naming the store class.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no artifacts (keeps_artifacts is False)")

    def load_artifacts(self, before: int | None = None) -> dict[str, Any]:
        """Key -> artifact (or ``artifacts.NotSaved``) as last committed, or as before history record ``before``."""
        return {}

    def copy_artifacts(self, source_run_id: str, before: int) -> None:
        """Inside a transaction: this run starts with the artifacts run ``source_run_id`` had before its history
        record ``before`` (a fork; stores that keep versions share them, nothing copied but references)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no artifacts (keeps_artifacts is False)")

    leases: bool = False
    """True when the store keeps a lease per run, so one context (in any process) drives it at a time."""

    def acquire(self, token: str) -> str | None:
        """Take the run for the context ``token`` before it runs; why not (a phrase), or None."""
        return None

    def release_lease(self, token: str) -> None:
        """The drive of ``token`` ended (paused, finished, failed)."""

    def running_elsewhere(self) -> str | None:
        """A phrase saying where the run is running now, if another live context or process drives it."""
        return None

    def unload(self) -> None:
        """Drop the in-memory copy of a durable store's state (it is read again when next needed)."""

    def is_current(self) -> bool:
        """False once another context or process took the run over since this store was opened."""
        return True

    def load_history(self) -> list[tuple]:
        """The history rows kept for this run, ordered by seq; a store that keeps none has none."""
        return []

    def history_next_seq(self) -> int:
        """The seq the next history row gets: one past the highest stored (0 when none)."""
        return max((r[0] for r in self.load_history()), default=-1) + 1


class StoredRun(NamedTuple):
    """A run a provider holds: what ``factory.runs()`` lists besides the runs alive in the kernel."""

    run_id: str
    pipeline_id: str
    status: str          # paused, failed, aborted, prepared, interrupted (its process died mid-run), running,
                         # or completed, terminated (finished: listed, never resumed)
    paused_at: str       # the stage address it continues at ("" for a finished run)
    where: str = ""      # for a run driven elsewhere: which process
    ended: float | None = None  # a finished run: when it ended (epoch seconds)
    forked_from: Any = None     # a fork: the ``kept.ForkSource`` it was made from


def stored_run(run_id: str, note) -> StoredRun | None:
    """What ``factory.runs()`` lists of a run whose store holds the engine's ``note``: a run with a checkpoint
    (resumable, or prepared), or a finished run the user did not remove; None for anything else."""
    if note is None:
        return None
    cp = note.checkpoint
    if cp is not None:
        return StoredRun(run_id, cp.pipeline_id, note.status or PAUSED, "/".join(cp.resume_at),
                         forked_from=fork_source_of(note))
    ended = ended_of(note)
    if ended is None or is_hidden(note):
        return None
    return StoredRun(run_id, ended.pipeline_id, ended.status, "", ended=ended.ended, forked_from=fork_source_of(note))


class ForeignStore(StoreBase):
    """A store written against the bare protocol, with the default capabilities."""

    __slots__ = ("inner",)

    def __init__(self, inner):
        self.inner = inner

    def get(self):
        return self.inner.get()

    def set(self, patch) -> None:
        self.inner.set(patch)

    def transaction(self):
        return self.inner.transaction()

    def subscribe(self, listener):
        return self.inner.subscribe(listener)

    def __repr__(self) -> str:
        return repr(self.inner)


def as_store(store, run_id: str) -> StoreBase:
    """``store`` itself when it declares its capabilities, else wrapped; StoreError when it is no store."""
    if isinstance(store, StoreBase):
        return store
    for method in ("get", "set", "transaction"):
        if not callable(getattr(store, method, None)):
            raise StoreError(f"store_factory returned {store!r} for run {run_id}, which has no {method}()")
    return ForeignStore(store)


class ProviderBase:
    """A ``store_factory`` with declared capabilities: ``provider(run_id)`` opens that run's store."""

    def __call__(self, run_id: str):
        raise NotImplementedError

    def release(self, run_id: str) -> None:
        """Forget a finished or discarded run's store (default: nothing to free)."""

    def adopt(self, run_id: str, store) -> None:
        """``store`` is ``run_id``'s store again (a context released with its run runs again; default: nothing)."""

    def run_ids(self) -> list[str] | None:
        """Every run id the provider holds state for; None when it cannot list them."""
        return None

    def lists_runs(self) -> bool:
        """Whether ``run_ids()`` can answer (so ``stored_runs()`` is every resumable run it holds)."""
        return type(self).run_ids is not ProviderBase.run_ids

    def stored_runs(self) -> list[StoredRun]:
        """The runs this provider holds that can be resumed (a checkpoint in their store), and the finished runs
        whose store keeps their note and that the user did not remove (see ``stored_run``).

        The default opens each listed run's store; providers that can (SQLite)
        answer in one query.
        """
        runs = (stored_run(run_id, run_note(self(run_id).get())) for run_id in self.run_ids() or ())
        return [run for run in runs if run is not None]


class CallableProvider(ProviderBase):
    """A plain ``store_factory`` callable, with the default capabilities."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[str], Any]):
        self.fn = fn

    def __call__(self, run_id: str):
        return self.fn(run_id)


def as_provider(store_factory) -> ProviderBase:
    """``store_factory`` as a provider with declared capabilities: a provider stays as it is, a plain callable ``run_id -> store`` is wrapped."""
    return store_factory if isinstance(store_factory, ProviderBase) else CallableProvider(store_factory)


class InMemoryStore(StoreBase):
    """Run state in memory: O(1) snapshots, copy-on-write merges, all-or-nothing transactions."""

    def __init__(self, initial: Mapping[str, Any] | None = None):
        if initial is not None and not is_mapping(initial):
            raise StoreError(f"InMemoryStore initial state must be a mapping, got {type(initial).__name__}")
        super().__init__()
        self._state = freeze(initial) if initial else EMPTY
        self._lock = threading.RLock()
        self._depth = 0

    def get(self):
        """The whole state as a read-only snapshot, in O(1)."""
        return self._state

    def set(self, patch: Mapping[str, Any]) -> None:
        """Deep-merge ``patch`` into the state (``DELETE`` removes a key); a non-mapping is a ``StoreError``."""
        if not is_mapping(patch):
            raise StoreError(f"store patch must be a mapping, got {type(patch).__name__}: {patch!r}")
        with self._lock:
            self._state = merge(self._state, patch)
            notify = self._depth == 0 and self._listeners
        if notify:
            self._listeners(self._state)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[InMemoryStore]:
        """A block whose writes apply all or nothing: an exception inside restores the state before it."""
        with self._lock:
            self._depth += 1
            before = self._state
            try:
                yield self
            except BaseException:
                self._state = before
                raise
            finally:
                self._depth -= 1
            notify = self._state is not before and self._depth == 0 and self._listeners
        if notify:
            self._listeners(self._state)

    def compare_and_set(self, expected, new) -> bool:
        with self._lock:
            if self._state is not expected or self._depth:
                return False
            self._state = freeze(new)
            notify = bool(self._listeners)
        if notify:
            self._listeners(self._state)
        return True

    def __repr__(self) -> str:
        return f"InMemoryStore({len(self._state)} keys)"


class MemoryStoreProvider(ProviderBase):
    """``store_factory`` keeping one ``InMemoryStore`` per run id until the run completes."""

    def __init__(self):
        self._stores: dict[str, InMemoryStore] = {}
        self._lock = threading.Lock()

    def __call__(self, run_id: str) -> InMemoryStore:
        with self._lock:
            store = self._stores.get(run_id)
            if store is None:
                store = self._stores[run_id] = InMemoryStore()
            return store

    def release(self, run_id: str) -> None:
        with self._lock:
            self._stores.pop(run_id, None)

    def adopt(self, run_id: str, store) -> None:
        """Keep ``store`` for ``run_id`` again, so a later ``resume`` finds what its run wrote there."""
        if isinstance(store, InMemoryStore):
            with self._lock:
                self._stores[run_id] = store

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._stores)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._stores

    def __len__(self) -> int:
        return len(self._stores)


default_provider = MemoryStoreProvider()
