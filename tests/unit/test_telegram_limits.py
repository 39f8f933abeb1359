"""SendRateLimiter on a virtual clock, and split_text's UTF-16 arithmetic."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.telegram.limits import SendRateLimiter, TelegramLimits, split_text, utf16_len

T = TypeVar("T")


class VirtualClock:
    """Time that moves only when every task is asleep: jump to the next deadline and wake it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, delay), next(self._seq), future))
        await future

    async def run(self, *aws: Awaitable[T]) -> list[T]:
        tasks = [asyncio.ensure_future(a) for a in aws]
        while True:
            await _settle()
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            live = [entry for entry in self._timers if not entry[2].done()]
            if not live:
                raise RuntimeError("deadlock: tasks wait on something other than the clock")
            self._timers = live
            heapq.heapify(self._timers)
            deadline, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, deadline)
            future.set_result(None)


async def _settle() -> None:
    """Run until every other task is blocked (on the virtual clock or a lock), then return."""
    loop = asyncio.get_running_loop()
    for _ in range(100_000):
        await asyncio.sleep(0)
        # CPython keeps runnable callbacks in `_ready`; empty means everyone else is waiting.
        if not getattr(loop, "_ready", None):
            return
    raise RuntimeError("tasks never settle")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def limiter_on(clock: VirtualClock, limits: TelegramLimits | None = None) -> SendRateLimiter:
    return SendRateLimiter(limits, clock=clock.time, sleep=clock.sleep)


async def send(
    limiter: SendRateLimiter, clock: VirtualClock, chat_id: int, log: list[Any], tag: Any = None
) -> None:
    await limiter.acquire(chat_id)
    log.append((clock.now, chat_id, tag))


def max_in_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- per chat ----------------------------------------------------------------------------------


async def test_private_chat_gets_one_message_per_second_in_order(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    log: list[Any] = []
    await clock.run(*(send(limiter, clock, 42, log, i) for i in range(5)))
    assert [t for t, _, _ in log] == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    assert [tag for _, _, tag in log] == [0, 1, 2, 3, 4]  # one chat's messages keep their order
    assert all(d > 0 for d in clock.sleeps)  # only real waits, no spinning
    assert len(clock.sleeps) == 4


async def test_different_private_chats_do_not_wait_for_each_other(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    log: list[Any] = []
    await clock.run(*(send(limiter, clock, chat, log) for chat in range(1, 11)))
    assert {t for t, _, _ in log} == {1000.0}
    assert clock.sleeps == []


async def test_group_gets_twenty_per_minute_and_one_per_second(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    log: list[Any] = []
    await clock.run(*(send(limiter, clock, -100500, log, i) for i in range(25)))
    times = [t for t, _, _ in log]
    assert times[:20] == [1000.0 + i for i in range(20)]
    assert times[20:] == [1060.0, 1061.0, 1062.0, 1063.0, 1064.0]
    assert max_in_window(times, 60.0) == 20
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))


async def test_is_group_can_be_given_explicitly(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire("@some_channel_name", is_group=False)
        stamps.append(clock.now)

    await clock.run(*(one() for _ in range(22)))
    assert stamps[-1] == 1021.0  # private pacing only: no 60 s pause after twenty


# -- overall -----------------------------------------------------------------------------------


async def test_global_budget_of_thirty_per_second(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    log: list[Any] = []
    await clock.run(*(send(limiter, clock, chat, log) for chat in range(1, 101)))
    times = [round(t, 2) for t, _, _ in log]
    # 30 per second, counted over 1.05 s so network jitter cannot make 31 arrive within one second
    assert times.count(1000.0) == 30 and times.count(1001.05) == 30 and times.count(1002.1) == 30
    assert times.count(1003.15) == 10
    assert max_in_window(times, 1.05) == 30
    # Waiters sleep until a slot frees: bounded by the slots, not by polling.
    assert all(d > 0 for d in clock.sleeps)
    assert len(clock.sleeps) <= 3 * 100


async def test_burst_to_many_chats_respects_every_limit(clock: VirtualClock) -> None:
    # The benchmark shape: 300 notifications to 50 chats (a mix of private chats and groups).
    limiter = limiter_on(clock)
    log: list[Any] = []
    chats = [c if c % 5 else -c for c in range(1, 51)]
    await clock.run(*(send(limiter, clock, chats[i % 50], log, i) for i in range(300)))
    assert len(log) == 300
    assert max_in_window([t for t, _, _ in log], 1.0) <= 30
    for chat in chats:
        times = [t for t, c, _ in log if c == chat]
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
        if chat < 0:
            assert max_in_window(times, 60.0) <= 20
        tags = [tag for _, c, tag in log if c == chat]
        assert tags == sorted(tags)
    assert log[-1][0] - 1000.0 <= 10.0  # 300 at 30/s is 10 s; per-chat limits cost nothing here


# -- 429s ----------------------------------------------------------------------------------------


async def test_penalise_blocks_only_that_chat(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    await clock.run(limiter.acquire(42))
    limiter.penalise(42, 5)
    log: list[Any] = []
    await clock.run(send(limiter, clock, 42, log), send(limiter, clock, 43, log))
    assert sorted(log) == [(1000.0, 43, None), (1005.0, 42, None)]


async def test_penalise_all_chats(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    limiter.penalise(None, 7)
    log: list[Any] = []
    await clock.run(*(send(limiter, clock, chat, log) for chat in (1, 2, -3)))
    assert {t for t, _, _ in log} == {1007.0}
    limiter.penalise(1, 2, all_chats=True)
    await clock.run(send(limiter, clock, 9, log))
    assert log[-1] == (1009.0, 9, None)


async def test_penalty_arriving_while_waiting_is_honoured(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    await clock.run(limiter.acquire(42))
    log: list[Any] = []

    async def late_429() -> None:
        await clock.sleep(0.5)
        limiter.penalise(42, 3)

    await clock.run(send(limiter, clock, 42, log), late_429())
    assert log == [(1003.5, 42, None)]  # not at 1001.0, when its own pacing would have let it go


async def test_a_cancelled_waiter_uses_no_slot(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    await clock.run(limiter.acquire(42))
    waiter = asyncio.ensure_future(limiter.acquire(42))
    for _ in range(10):
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    log: list[Any] = []
    await clock.run(send(limiter, clock, 42, log))
    assert log == [(1001.0, 42, None)]


async def test_delay_for_reports_without_waiting(clock: VirtualClock) -> None:
    limiter = limiter_on(clock)
    assert limiter.delay_for(42) == 0.0
    await clock.run(limiter.acquire(42))
    assert limiter.delay_for(42) == 1.0
    assert limiter.delay_for(43) == 0.0
    limiter.penalise(43, 4)
    assert limiter.delay_for(43) == 4.0


async def test_idle_chats_are_forgotten(clock: VirtualClock) -> None:
    limiter = SendRateLimiter(clock=clock.time, sleep=clock.sleep, idle_forget=120.0)
    await clock.run(*(limiter.acquire(chat) for chat in range(1, 200)))
    clock.now += 500
    await clock.run(limiter.acquire(5000))
    assert len(limiter._chats) == 1


async def test_works_on_the_real_event_loop_clock() -> None:
    limiter = SendRateLimiter(TelegramLimits(chat_interval=0.05))
    loop = asyncio.get_running_loop()
    stamps = []
    for _ in range(3):
        await limiter.acquire(42)
        stamps.append(loop.time())
    assert stamps[2] - stamps[0] >= 0.095


# -- split_text --------------------------------------------------------------------------------


def test_short_text_is_one_message() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("a" * 4096) == ["a" * 4096]
    assert split_text("a" * 4097) == ["a" * 4096, "a"]


def test_empty_and_blank_text_give_nothing_to_send() -> None:
    assert split_text("") == []
    assert split_text(" \n\n \t") == []


def test_emoji_count_as_two_code_units() -> None:
    assert utf16_len("😀") == 2 and utf16_len("中") == 1 and utf16_len("e\u0301") == 2
    text = "😀" * 3000  # 6000 code units
    chunks = split_text(text)
    assert [utf16_len(c) for c in chunks] == [4096, 1904]
    assert "".join(chunks) == text
    odd = "a" + "😀" * 2048  # 4097 units: the last emoji must not be cut in half
    assert [utf16_len(c) for c in split_text(odd)] == [4095, 2]


def test_cjk_without_spaces_is_cut_at_the_limit() -> None:
    text = "我的打印机无法连接网络。" * 1000  # 12,000 BMP characters, no whitespace
    chunks = split_text(text)
    assert [len(c) for c in chunks] == [4096, 4096, 3808]
    assert "".join(chunks) == text


def test_paragraphs_are_kept_whole() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(12)]  # about 770 units each
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = split_text(text)
    assert all(utf16_len(c) <= 4096 for c in chunks)
    for chunk in chunks:
        assert chunk.startswith("Paragraph ") and chunk.endswith("word")
    assert sum(c.count("Paragraph ") for c in chunks) == 12


def test_lines_before_words_and_words_before_hard_cuts() -> None:
    lines = "\n".join(f"line {i:03d} " + "x" * 30 for i in range(10))
    chunks = split_text(lines, limit=100)
    assert all(c.startswith("line ") for c in chunks)
    words = " ".join(["supercalifragilistic"] * 10)
    assert all(c.replace("supercalifragilistic", "").strip() == "" for c in split_text(words, limit=50))


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    url = "https://example.com/" + "a" * 9000
    chunks = split_text(f"see {url} thanks")
    assert all(utf16_len(c) <= 4096 for c in chunks)
    assert "".join(chunks).replace(" ", "") == f"see{url}thanks"


@pytest.mark.parametrize(
    "cluster",
    [
        "👨\u200d👩\u200d👧\u200d👦",  # ZWJ family: 11 code units
        "🇨🇳",  # flag: two regional indicators
        "👍🏽",  # skin tone modifier
        "e\u0301",  # combining accent
        "1\ufe0f\u20e3",  # keycap
    ],
)
def test_visible_characters_are_not_split(cluster: str) -> None:
    limit = utf16_len(cluster) * 3 + 1
    chunks = split_text(cluster * 20, limit=limit)
    assert all(c == cluster * (len(c) // len(cluster)) for c in chunks)
    assert all(utf16_len(c) <= limit for c in chunks)


def test_a_surrogate_pair_held_as_two_code_points_is_not_split() -> None:
    pair = "\ud83d\ude00"  # as decoded with surrogatepass: two code points, one emoji
    # "a" + pair + the high half would be exactly 4 units: the pair must move whole to the next chunk.
    chunks = split_text("a" + pair * 5, limit=4)
    assert chunks == ["a" + pair, pair * 2, pair * 2]


def test_limit_must_fit_any_character() -> None:
    with pytest.raises(ValueError):
        split_text("x", limit=1)


_ALPHABET = st.sampled_from([*"ab中文 \n", "😀", "\u0301", "\u200d", "🇨", "🇳", "\ufe0f", "\t"])


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=300), limit=st.integers(min_value=2, max_value=40))
def test_split_text_properties(text: str, limit: int) -> None:
    chunks = split_text(text, limit=limit)
    assert all(0 < utf16_len(c) <= limit for c in chunks)
    assert all(c.strip() for c in chunks)
    # Only whitespace at the breaks is dropped; every other character survives, in order.
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())
