"""One adjustable clock per WeChat account, shared by everything that checks time.

Production uses the wall clock. Tests replay a captured 2020 request (whose timestamp the replay
window would rightly refuse) or step past the 48-hour customer-service window by moving this clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class AdjustableClock:
    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def __call__(self) -> float:
        return self._source() + self._offset

    def freeze(self, at: float) -> None:
        """Stand still at `at` (epoch seconds)."""
        self._source, self._offset = (lambda: at), 0.0

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def reset(self) -> None:
        self._source, self._offset = time.time, 0.0
