"""pipenb's own thread pool: the workers behind ``executor="thread"``.

It exists apart from the executor because it is a pool, not a way of calling: a small
``concurrent.futures.Executor`` whose threads are named ``pipenb-step-0``, ``pipenb-step-1``... (so
tracebacks and ``py-spy`` show them as pipenb's) and whose :meth:`StepThreadPool.post` hands a bare
callable to a worker without a ``concurrent.futures.Future``, the fast path of
:func:`pipenb.core.executors.call`. :func:`shared_pool` (also ``SHARED_POOL``) is created on first use:
importing pipenb starts no thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import os
import queue
import threading
from typing import Callable

__all__ = ["StepThreadPool", "shared_pool"]

_log = logging.getLogger("pipenb.executor")


class StepThreadPool(cf.Executor):
    """A small thread pool with a fast hand-off to an asyncio loop.

    Like ``ThreadPoolExecutor`` (threads start lazily, up to ``max_workers``, reused when idle), but
    threads are named ``f"{prefix}-{n}"`` and :meth:`post` takes a bare callable without creating a
    ``concurrent.futures.Future``: :func:`pipenb.core.executors.call` uses it to settle an asyncio future directly with
    ``loop.call_soon_threadsafe``, which halves the cost of a round trip compared with
    ``loop.run_in_executor``. Threads are daemons: a step left running (abandoned after an abort)
    never blocks the kernel or interpreter from exiting.
    """

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "pipenb-step"):
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._counter = itertools.count()
        self._shutdown = False

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def is_shut_down(self) -> bool:
        """True once :meth:`shutdown` was called: :meth:`post` and :meth:`submit` refuse new work."""
        return self._shutdown

    def post(self, job: Callable[[], None]) -> None:
        """Run ``job()`` on a pool thread; ``job`` must catch its own exceptions."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self._queue.put(job)
        if self._idle.acquire(blocking=False):
            return  # an idle worker will take it
        with self._lock:
            if len(self._threads) < self._max_workers and not self._shutdown:
                t = threading.Thread(
                    target=_pool_worker, args=(self._queue, self._idle),
                    name=f"{self._prefix}-{next(self._counter)}", daemon=True,
                )
                t.start()
                self._threads.append(t)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        fut: cf.Future = cf.Future()

        def job():
            if not fut.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        self.post(job)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                threads = []
            else:
                self._shutdown = True
                if cancel_futures:
                    while True:
                        try:
                            self._queue.get_nowait()
                        except queue.Empty:
                            break
                self._queue.put(None)  # each worker passes the sentinel on, then exits
                threads = list(self._threads)
        if wait:
            me = threading.current_thread()
            for t in threads:
                if t is not me:
                    t.join()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else f"{len(self._threads)}/{self._max_workers} threads"
        return f"<StepThreadPool {self._prefix!r} {state}>"


def _pool_worker(q: queue.SimpleQueue, idle: threading.Semaphore) -> None:
    while True:
        job = q.get()
        if job is None:
            q.put(None)
            return
        try:
            job()
        except BaseException:  # a job should not raise; never let it kill the worker
            _log.exception("pipenb step thread: a job raised")
        del job
        idle.release()


_shared_pool: StepThreadPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> StepThreadPool:
    """The pool behind ``executor="thread"``, created on first use (``min(32, cpu + 4)`` threads)."""
    global _shared_pool
    pool = _shared_pool
    if pool is None or pool.is_shut_down:
        with _shared_lock:
            if _shared_pool is None or _shared_pool.is_shut_down:
                _shared_pool = StepThreadPool(thread_name_prefix="pipenb-step")
            pool = _shared_pool
    return pool


def __getattr__(name):
    # SHARED_POOL is created on first use: importing pipenb starts no thread.
    if name == "SHARED_POOL":
        return shared_pool()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
