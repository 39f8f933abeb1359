"""Outgoing limits of the Bot API: a send-rate limiter and a text splitter.

Telegram answers 429 long before a bot reaches its quota if it bursts, and a 429 in a group can mean
minutes of silence; pacing ourselves is cheaper than being told off. The limits (Bot FAQ): about 30
messages per second overall, no more than one per second in one chat, 20 per minute in one group.
The limiter lives in one process: with several gateway instances each paces only its own sends, and a
429 (fed back through `penalise`) is what keeps the sum honest.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

TELEGRAM_TEXT_LIMIT = 4096  # UTF-16 code units, after entity parsing
TELEGRAM_CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class TelegramLimits:
    global_per_second: int = 30
    # The overall budget is counted over 1 s plus this margin: requests leave on time but reach
    # Telegram with network jitter, and 30 sends spread over exactly 1 s can arrive as 31 in one second.
    global_margin: float = 0.05
    chat_interval: float = 1.0  # seconds between two sends to one chat (private or group)
    group_per_window: int = 20
    group_window: float = 60.0


@dataclass
class _ChatState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # FIFO: one chat's messages keep their order
    last_sent: float | None = None
    recent: deque[float] = field(default_factory=deque)  # group sends inside the sliding window
    blocked_until: float = 0.0
    users: int = 0


class SendRateLimiter:
    """`await acquire(chat_id, is_group)` before each send; `penalise(...)` after a 429.

    Waiting is plain sleeping until the earliest moment the limits allow, never polling. A chat's
    callers queue on that chat's lock (so its messages go out in order); callers whose chat is ready
    then queue on one global lock for a slot of the overall budget.
    """

    def __init__(
        self,
        limits: TelegramLimits | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        idle_forget: float = 120.0,
    ) -> None:
        self.limits = limits or TelegramLimits()
        self._clock = clock
        self._sleep = sleep
        self._idle_forget = idle_forget
        self._chats: dict[int | str, _ChatState] = {}
        self._global_lock = asyncio.Lock()
        self._global_recent: deque[float] = deque()
        self._global_blocked_until = 0.0
        self._last_prune = clock()

    async def acquire(self, chat_id: int | str, is_group: bool | None = None) -> float:
        """Wait until one message may be sent to `chat_id`; returns the seconds waited.

        `is_group=None` infers it from the id: groups, supergroups and channels have negative ids.
        """
        group = _infer_group(chat_id) if is_group is None else is_group
        started = self._clock()
        state = self._chats.get(chat_id)
        if state is None:
            state = self._chats[chat_id] = _ChatState()
        state.users += 1
        try:
            async with state.lock:
                while True:
                    await self._wait_until(lambda: self._chat_ready_at(state, group))
                    async with self._global_lock:
                        await self._wait_until(self._global_ready_at)
                        now = self._clock()
                        # A 429 for this chat may have arrived while we waited for a global slot.
                        if self._chat_ready_at(state, group) <= now:
                            self._commit(state, group, now)
                            return now - started
        finally:
            state.users -= 1
            self._maybe_prune()

    def penalise(self, chat_id: int | str | None, retry_after: float, *, all_chats: bool = False) -> None:
        """Honour a 429: nothing goes to `chat_id` (or anywhere, with `all_chats`) for `retry_after` s."""
        until = self._clock() + max(0.0, retry_after)
        if all_chats or chat_id is None:
            self._global_blocked_until = max(self._global_blocked_until, until)
            return
        state = self._chats.get(chat_id)
        if state is None:
            state = self._chats[chat_id] = _ChatState()
        state.blocked_until = max(state.blocked_until, until)

    def delay_for(self, chat_id: int | str, is_group: bool | None = None) -> float:
        """Seconds until a send to `chat_id` would be allowed, ignoring callers already queued.

        Lets an outbox worker postpone a record instead of holding a task in `acquire`.
        """
        group = _infer_group(chat_id) if is_group is None else is_group
        now = self._clock()
        state = self._chats.get(chat_id)
        ready = self._global_ready_at()
        if state is not None:
            ready = max(ready, self._chat_ready_at(state, group))
        return max(0.0, ready - now)

    # -- internals ---------------------------------------------------------------------------------

    async def _wait_until(self, ready_at: Callable[[], float]) -> None:
        # Recompute after each sleep: penalties and other callers move the target while we sleep.
        while True:
            delay = ready_at() - self._clock()
            if delay <= 0:
                return
            await self._sleep(delay)

    def _chat_ready_at(self, state: _ChatState, group: bool) -> float:
        lim = self.limits
        ready = state.blocked_until
        if state.last_sent is not None:
            ready = max(ready, state.last_sent + lim.chat_interval)
        if group:
            _expire(state.recent, lim.group_window, self._clock())
            if len(state.recent) >= lim.group_per_window:
                ready = max(ready, state.recent[-lim.group_per_window] + lim.group_window)
        return ready

    def _global_ready_at(self) -> float:
        ready = self._global_blocked_until
        window = 1.0 + self.limits.global_margin
        _expire(self._global_recent, window, self._clock())
        if len(self._global_recent) >= self.limits.global_per_second:
            ready = max(ready, self._global_recent[-self.limits.global_per_second] + window)
        return ready

    def _commit(self, state: _ChatState, group: bool, now: float) -> None:
        state.last_sent = now
        if group:
            state.recent.append(now)
        self._global_recent.append(now)

    def _maybe_prune(self) -> None:
        # Per-chat state must not grow with every chat ever served; forget chats idle for a while.
        now = self._clock()
        if now - self._last_prune < self._idle_forget:
            return
        self._last_prune = now
        horizon = now - max(self._idle_forget, self.limits.group_window)
        for key in [
            k
            for k, s in self._chats.items()
            if s.users == 0
            and s.blocked_until <= now
            and (s.last_sent is None or s.last_sent < horizon)
            and not s.lock.locked()
        ]:
            del self._chats[key]


def _expire(window: deque[float], length: float, now: float) -> None:
    # Same expression as the readiness check (`ts + length`), so rounding cannot disagree with it.
    while window and window[0] + length <= now:
        window.popleft()


def _infer_group(chat_id: int | str) -> bool:
    if isinstance(chat_id, int):
        return chat_id < 0
    return chat_id.startswith(("@", "-"))


# -- text splitting --------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (characters beyond the BMP count 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split `text` into messages of at most `limit` UTF-16 code units each.

    Breaks at a blank line, else a line end, else whitespace, as long as that keeps at least half of
    the allowed length in the chunk; only then cuts hard, and never inside a surrogate pair, a
    combining sequence, an emoji ZWJ sequence or a flag. The whitespace at a break is dropped, and
    empty chunks are never returned (Telegram rejects empty messages).
    """
    if limit < 2:
        raise ValueError("limit must allow at least one character outside the BMP (2 code units)")
    chunks: list[str] = []
    rest = text
    while rest:
        if utf16_len(rest) <= limit:
            _append(chunks, rest)
            break
        end = _fit(rest, limit)
        cut, resume = _break_at(rest, end)
        _append(chunks, rest[:cut])
        rest = rest[resume:]
    return chunks


def _append(chunks: list[str], chunk: str) -> None:
    chunk = chunk.rstrip()
    if chunk.strip():
        chunks.append(chunk)


def _fit(text: str, limit: int) -> int:
    """The largest code-point index whose prefix fits in `limit` code units."""
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _break_at(text: str, end: int) -> tuple[int, int]:
    """Where to end this chunk (`cut`) and where the next one starts (`resume`)."""
    floor = max(1, end // 2)
    # A separator may start right at `end`: it is dropped, so it does not need to fit.
    para = text.rfind("\n\n", 0, end + 2)
    if para >= floor:
        resume = para
        while resume < len(text) and text[resume] == "\n":
            resume += 1
        return para, resume
    line = text.rfind("\n", 0, end + 1)
    if line >= floor:
        return line, line + 1
    for index in range(min(end, len(text) - 1), floor - 1, -1):
        if text[index].isspace():
            return index, index + 1
    cut = end
    while cut > 0 and _joined(text, cut):
        cut -= 1
    if cut == 0:  # one unbreakable cluster longer than the limit: a code-point cut is all we can do
        cut = end
        while cut > 1 and 0xD800 <= ord(text[cut - 1]) <= 0xDBFF:
            cut -= 1
    return cut, cut


def _joined(text: str, index: int) -> bool:
    """True if cutting between text[index - 1] and text[index] would split a visible character."""
    prev, nxt = ord(text[index - 1]), ord(text[index])
    if 0xD800 <= prev <= 0xDBFF and 0xDC00 <= nxt <= 0xDFFF:  # a pair kept as two code points
        return True
    if prev == 0x200D or nxt in (0x200D, 0xFE0E, 0xFE0F, 0x20E3):  # ZWJ, variation selectors, keycap
        return True
    if 0x1F3FB <= nxt <= 0x1F3FF or 0xE0020 <= nxt <= 0xE007F:  # skin tones, tag sequences
        return True
    if unicodedata.category(text[index]) in ("Mn", "Mc", "Me"):
        return True
    if _is_regional(nxt) and _is_regional(prev):
        # Flags are pairs of regional indicators: inside a run, split only after an even count.
        run = 0
        i = index - 1
        while i >= 0 and _is_regional(ord(text[i])):
            run += 1
            i -= 1
        return run % 2 == 1
    return False


def _is_regional(code: int) -> bool:
    return 0x1F1E6 <= code <= 0x1F1FF
