"""The wake-up of the delivery job (``Scheduler.run_soon``, called when the worker stored new
partial text) is never lost: one that arrives while a delivery run is going on makes the
job run again as soon as that run ends, not at its next interval (a second or more later,
which is how first words came to wait that long)."""

from __future__ import annotations

import asyncio

from bot.scheduler import Scheduler

#: Far longer than the test: any second run is the wake-up's.
INTERVAL = 600.0


async def test_a_wake_up_during_a_run_runs_the_job_again_right_after_it() -> None:
    scheduler = Scheduler()
    started: list[int] = []
    first_running = asyncio.Event()
    release = asyncio.Event()
    second = asyncio.Event()

    async def deliver() -> None:
        started.append(len(started) + 1)
        if len(started) == 1:
            first_running.set()
            await release.wait()
        else:
            second.set()

    scheduler.every(INTERVAL, deliver, job_id="deliver")
    scheduler.start()
    try:
        await asyncio.wait_for(first_running.wait(), 10)
        scheduler.run_soon("deliver")  # new partial text while the first run goes on
        scheduler.run_soon("deliver")  # and more: still one run after it
        await asyncio.sleep(0.05)
        assert started == [1], "no second run while the first is going on"
        release.set()
        await asyncio.wait_for(second.wait(), 10)
        await asyncio.sleep(0.2)
        assert started == [1, 2]
    finally:
        await scheduler.shutdown()


async def test_a_wake_up_between_runs_runs_the_job_at_once() -> None:
    scheduler = Scheduler()
    runs = asyncio.Queue[None]()

    async def deliver() -> None:
        runs.put_nowait(None)

    scheduler.every(INTERVAL, deliver, job_id="deliver")
    scheduler.start()
    try:
        await asyncio.wait_for(runs.get(), 10)  # the run at start
        await asyncio.sleep(0.05)
        scheduler.run_soon("deliver")
        await asyncio.wait_for(runs.get(), 10)
    finally:
        await scheduler.shutdown()
