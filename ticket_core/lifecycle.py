"""The lifecycle contract: `initialize()` / `shutdown()` and `async with`, plus tracked background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)


STOP_SECONDS = 20.0


async def stop_task(task: asyncio.Task[Any], seconds: float = STOP_SECONDS) -> None:
    """Cancel `task` and wait for it, but never longer than `seconds`: a task that swallows its
    cancellation, or awaits something that never answers, must not hang the whole shutdown."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        log.error(
            "task %s did not stop within %.0f s after cancellation; left behind", task.get_name(), seconds
        )
        return
    if not task.cancelled():
        task.exception()  # marks it retrieved; the task's owner logs its own failures


class Component:
    """Owns resources. `async with` runs initialize and, if that fails halfway, shutdown."""

    # How long `async with` waits for shutdown before it gives up on it (and says so in the log).
    shutdown_seconds = STOP_SECONDS

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        try:
            await self.initialize()
        except BaseException:
            await self.shutdown()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = asyncio.get_running_loop().create_task(self.shutdown(), name=f"shutdown {type(self).__name__}")
        done, _ = await asyncio.wait({task}, timeout=self.shutdown_seconds)
        if done:
            task.result()  # its error, if any, is the caller's to see
            return
        log.error(
            "%s did not shut down within %.0f s; going on without it",
            type(self).__name__,
            self.shutdown_seconds,
        )
        await stop_task(task, 2.0)


class TaskGroup:
    """Background loops that are cancelled and awaited on shutdown; never a bare create_task."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name or self._name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self, seconds: float = STOP_SECONDS) -> None:
        tasks = list(self._tasks)
        await asyncio.gather(*(stop_task(task, seconds) for task in tasks))
        self._tasks.clear()
