"""Shutdown always ends: a task or component that ignores cancellation is given up on, and said so."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ticket_core.lifecycle import Component, TaskGroup, stop_task


async def _stubborn(started: asyncio.Event, released: asyncio.Event) -> None:
    """Ignores cancellation until `released`, as a buggy library call can."""
    started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await released.wait()
        raise


async def test_stop_task_gives_up_on_a_task_that_ignores_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, released = asyncio.Event(), asyncio.Event()
    task = asyncio.get_running_loop().create_task(_stubborn(started, released), name="stubborn")
    await started.wait()
    loop = asyncio.get_running_loop()
    begun = loop.time()
    with caplog.at_level(logging.ERROR):
        await stop_task(task, 0.3)
    assert loop.time() - begun < 2
    assert not task.done()
    assert any("stubborn did not stop" in r.getMessage() for r in caplog.records)
    released.set()
    await asyncio.wait({task}, timeout=5)


async def test_stop_task_waits_for_a_task_that_cleans_up() -> None:
    cleaned: list[str] = []

    async def polite() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)
            cleaned.append("done")

    task = asyncio.get_running_loop().create_task(polite())
    await asyncio.sleep(0)
    await stop_task(task, 5)
    assert task.cancelled() and cleaned == ["done"]


async def test_task_group_cancel_all_is_bounded() -> None:
    group = TaskGroup("t")
    started, released = asyncio.Event(), asyncio.Event()
    stubborn = group.spawn(_stubborn(started, released))
    group.spawn(asyncio.sleep(3600))
    await started.wait()
    begun = asyncio.get_running_loop().time()
    await group.cancel_all(0.3)
    assert asyncio.get_running_loop().time() - begun < 2
    assert len(group) == 0
    released.set()
    await asyncio.wait({stubborn}, timeout=5)


class _HangingShutdown(Component):
    shutdown_seconds = 0.3

    def __init__(self) -> None:
        self.forever = asyncio.Event()

    async def shutdown(self) -> None:
        await self.forever.wait()


class _FailingShutdown(Component):
    async def shutdown(self) -> None:
        raise RuntimeError("could not close")


async def test_a_component_whose_shutdown_hangs_does_not_hang_its_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    begun = asyncio.get_running_loop().time()
    with caplog.at_level(logging.ERROR):
        async with _HangingShutdown():
            pass
    assert asyncio.get_running_loop().time() - begun < 3
    assert any("_HangingShutdown did not shut down within" in r.getMessage() for r in caplog.records)


async def test_a_shutdown_error_still_reaches_the_caller() -> None:
    with pytest.raises(RuntimeError, match="could not close"):
        async with _FailingShutdown():
            pass
