"""A service's background loops run under supervision: a crash, or a cancellation raised
from inside the loop, restarts it; only cancelling the supervising task ends it."""

from __future__ import annotations

import asyncio

import pytest

from contactcenter.servicekit.app import run_supervised


async def test_a_loop_that_fails_or_is_cancelled_from_inside_runs_again() -> None:
    stop = asyncio.Event()
    runs: list[int] = []

    async def loop(stop_: asyncio.Event) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("the broker went away")
        if len(runs) == 2:
            cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await asyncio.gather(cancelled)  # raises CancelledError in this task
        await stop_.wait()

    task = asyncio.create_task(run_supervised("test-loop", loop, stop, restart_delay_s=0.01))
    for _ in range(200):
        if len(runs) == 3:
            break
        await asyncio.sleep(0.01)
    assert runs == [0, 1, 2]
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_cancelling_the_supervisor_ends_it() -> None:
    stop = asyncio.Event()

    async def loop(stop_: asyncio.Event) -> None:
        await stop_.wait()

    task = asyncio.create_task(run_supervised("test-loop", loop, stop, restart_delay_s=0.01))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
