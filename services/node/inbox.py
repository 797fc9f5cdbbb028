"""Group commit for the node's inbox: the deliveries that arrive together are decided in one
SQLite transaction, and each is acknowledged only once that transaction has committed.

FastStream hands the node a fetched batch as concurrent handler calls. Each call submits its
delivery here and waits; the batcher takes everything submitted in the same turn of the event
loop, or within ``window_s`` if one is set (up to ``max_batch``), runs
``NodeCore.process_batch`` (one commit instead of one per message), and gives each caller its
verdict, or the exception its delivery met. Nothing acknowledged is ever lost: the handler
acknowledges after its verdict arrives, and the verdict arrives after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from services.node.core import Delivery, Verdict

Decide = Callable[[Sequence[Delivery]], list[Verdict | Exception]]


class InboxBatcher:
    def __init__(self, decide: Decide, *, window_s: float = 0.0, max_batch: int = 256) -> None:
        self._decide = decide
        self.window_s = window_s
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Delivery, asyncio.Future[Verdict]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # commits made, for the benchmark's stage report
        self._last_group_at = float("-inf")  # the event loop's time of the last group decided

    async def decide(self, d: Delivery) -> Verdict:
        """The verdict on ``d`` once it is committed; raises what deciding it raised."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inbox-batcher")
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        await self._queue.put((d, future))
        return await future

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            # The handlers of one fetched batch are started together: one turn of the event loop
            # lets them all submit, so a group forms without waiting. A window, if set, lingers
            # for stragglers (fewer commits, more latency).
            await asyncio.sleep(0)
            deadline = asyncio.get_running_loop().time() + self.window_s
            while len(group) < self.max_batch:
                if not self._queue.empty():
                    group.append(self._queue.get_nowait())
                    continue
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    group.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            self._settle(group)

    def busy(self, within_s: float) -> bool:
        """Deliveries are waiting, or a group was decided within the last ``within_s``."""
        now = asyncio.get_running_loop().time()
        return not self._queue.empty() or now - self._last_group_at < within_s

    def _settle(self, group: list[tuple[Delivery, asyncio.Future[Verdict]]]) -> None:
        try:
            results: Sequence[Verdict | Exception] = self._decide([d for d, _ in group])
        except Exception as exc:  # the commit itself failed: every delivery of the group did
            results = [exc] * len(group)
        self._last_group_at = asyncio.get_running_loop().time()
        self.batches += 1
        for (_, future), result in zip(group, results, strict=True):
            if future.done():  # its handler was cancelled (the node stopping)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
