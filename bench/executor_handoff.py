"""Round-trip cost of handing a no-op to a thread: raw run_in_executor vs pipenb.core.executors.

Measured interleaved in short chunks (the machine is shared and noisy); prints the best chunk of
each and the median of the paired ratios. Usage: PYTHONPATH=. python bench/executor_handoff.py [chunks]
"""

import asyncio
import concurrent.futures as cf
import statistics
import sys
import time

from pipenb.core import executors as ex


def noop(*_):
    return None


async def chunk(make, n=200):
    t0 = time.perf_counter()
    for _ in range(n):
        await make()
    return (time.perf_counter() - t0) / n * 1e6


async def main(chunks):
    loop = asyncio.get_running_loop()
    pool = cf.ThreadPoolExecutor(4, thread_name_prefix="raw")
    ev = asyncio.Event()
    fut = loop.create_future()  # a run's abort future, as the engine holds one
    calls5 = [ex.Call(noop, (), f"step {i}") for i in range(5)]
    cases = {
        "raw loop.run_in_executor(pool, noop)": lambda: loop.run_in_executor(pool, noop),
        'call("thread", noop)': lambda: ex.call("thread", noop),
        'call("thread", noop, abort_event=ev)': lambda: ex.call("thread", noop, abort_event=ev),
        'call("thread", noop, abort_event=fut)': lambda: ex.call("thread", noop, abort_event=fut),
        'call_batch("thread", 5 x noop)': lambda: ex.call_batch("thread", calls5),
        'call_batch("thread", 5 x noop, abort_event=ev)': lambda: ex.call_batch("thread", calls5, abort_event=ev),
        'call_batch("thread", 5 x noop, abort_event=fut)': lambda: ex.call_batch("thread", calls5, abort_event=fut),
        "call(ThreadPoolExecutor, noop)": lambda: ex.call(pool, noop),
    }
    times = {k: [] for k in cases}
    for make in cases.values():
        await chunk(make, 50)
    for _ in range(chunks):
        for k, make in cases.items():
            times[k].append(await chunk(make))
    raw = times["raw loop.run_in_executor(pool, noop)"]
    for k, ts in times.items():
        ratio = statistics.median(t / r for t, r in zip(ts, raw, strict=True))
        print(f"{k:<48} best {min(ts):7.1f} us  median {statistics.median(ts):7.1f} us  ratio vs raw {ratio:.2f}x")
    pool.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
