"""``run_sync``: finish an awaitable from a plain script or a Jupyter cell.

In a script there is no running loop, so ``asyncio.run`` does it. Inside a
kernel a loop is already running and ``asyncio.run`` refuses; nest-asyncio
(imported only then) lets the cell drive the loop re-entrantly. Prefer
``ctx.start()`` in notebooks: a blocked cell cannot process widget clicks.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

T = TypeVar("T")


def run_sync(awaitable: Awaitable[T]) -> T:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        async def _main():
            return await awaitable

        return asyncio.run(_main())
    import nest_asyncio

    nest_asyncio.apply(loop)
    return loop.run_until_complete(asyncio.ensure_future(awaitable, loop=loop))
