from __future__ import annotations

from typing import Any

from channels.fake import FakeChannel
from gateway.appkeys import OUTBOX
from tests.helpers import eventually, running_app, token
from ticket_core.errors import ChannelUnavailable, PermanentDeliveryError, RateLimited
from ticket_core.messages import OutboundMessage


def _message(text: str = "hello") -> OutboundMessage:
    return OutboundMessage(channel="fake", account="main", recipient="user-1", text=text)


async def test_failing_send_retries_with_backoff_and_ends_dead_visible_in_api(
    make_settings: Any, mongo: Any
) -> None:
    fake = FakeChannel(fail_always=ChannelUnavailable("platform down"))
    settings = make_settings(outbox={"max_attempts": 4})
    async with running_app(settings, channels=[fake]) as client:
        outbox = client.app[OUTBOX]
        record_id = await outbox.enqueue(_message(), idempotency_key="k1")

        async def dead() -> Any:
            return await mongo.outbox.find_one({"state": "dead"})

        doc = await eventually(dead, timeout=20)
        assert str(doc["_id"]) == record_id
        assert fake.attempts == 4 and doc["attempts"] == 4
        assert "platform down" in doc["last_error"]
        retries = [h for h in doc["history"] if h["outcome"] == "retry"]
        delays = [h["delay"] for h in retries]
        assert len(delays) == 3
        # backoff with jitter: the base doubles (0.05, 0.1, 0.2); jitter keeps each in [base/2, base]
        for n, delay in enumerate(delays):
            base = min(0.05 * 2**n, 0.5)
            assert base / 2 <= delay <= base, delays
        listed = await (
            await client.get("/api/v1/outbox?state=dead", headers=await token(client, "viewer"))
        ).json()
        assert [item["id"] for item in listed["items"]] == [record_id]
        assert listed["items"][0]["last_error"].startswith("ChannelUnavailable")


async def test_send_that_succeeds_on_second_try_is_delivered_exactly_once(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    fake.fail_next(ChannelUnavailable("blip"))
    async with running_app(settings, channels=[fake]) as client:
        outbox = client.app[OUTBOX]
        await outbox.enqueue(_message("once"), idempotency_key="k2")
        await outbox.enqueue(_message("once"), idempotency_key="k2")  # the same key again: still one record

        async def sent() -> Any:
            return await mongo.outbox.find_one({"state": "sent"})

        doc = await eventually(sent, timeout=10)
        assert doc["attempts"] == 2
        assert [m.text for m in fake.sent] == ["once"]
        assert await mongo.outbox.count_documents({}) == 1


async def test_retry_after_is_honoured_and_permanent_errors_do_not_retry(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    fake.fail_next(RateLimited("slow down", retry_after=0.6))
    async with running_app(settings, channels=[fake]) as client:
        outbox = client.app[OUTBOX]
        await outbox.enqueue(_message("limited"), idempotency_key="k3")
        doc = await eventually(lambda: mongo.outbox.find_one({"state": "sent"}), timeout=10)
        retry = next(h for h in doc["history"] if h["outcome"] == "retry")
        assert retry["delay"] >= 0.6
        assert (doc["sent_at"] - retry["at"]).total_seconds() >= 0.55
        fake.fail_always = PermanentDeliveryError("user blocked the bot", platform_code=403)
        await outbox.enqueue(_message("blocked"), idempotency_key="k4")
        dead = await eventually(lambda: mongo.outbox.find_one({"state": "dead"}), timeout=10)
        assert dead["attempts"] == 1 and dead["error_code"] == 403
