from __future__ import annotations

from typing import Any

from channels.fake import FakeChannel
from tests.helpers import eventually, running_app, ticket_from_fake, token


async def test_each_status_change_notifies_once_and_notes_never(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    async with running_app(settings, channels=[fake]) as client:
        number = await ticket_from_fake(client, "u7")
        headers = await token(client, "agent")
        for status in ("open", "pending", "solved"):
            res = await client.patch(f"/api/v1/tickets/{number}", json={"status": status}, headers=headers)
            assert res.status == 200
        await client.post(
            f"/api/v1/tickets/{number}/replies",
            json={"text": "内部备注", "type": "internal"},
            headers=headers,
        )

        async def four() -> bool:
            return len(fake.sent) >= 4

        await eventually(four)
        texts = [m.text for m in fake.sent]
        assert len(texts) == 4  # created + open + pending + solved
        assert "工单号" in texts[0] and number in texts[0]
        assert "处理中" in texts[1] and "等待您回复" in texts[2] and "已解决" in texts[3]
        assert not any("内部备注" in t for t in texts)
        events = await mongo.outbox.distinct("event")
        assert sorted(events) == ["status_changed", "ticket_created"]


async def test_a_template_record_overrides_the_packaged_default(settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    await mongo.templates.insert_one(
        {
            "event": "ticket_created",
            "channel": "fake",
            "locale": "zh-CN",
            "text": "定制模板：{{ ticket.number }} / {{ customer_name or '客户' }}",
        }
    )
    async with running_app(settings, channels=[fake]) as client:
        number = await ticket_from_fake(client, "u8")

        async def sent() -> bool:
            return bool(fake.sent)

        await eventually(sent)
        assert fake.sent[0].text == f"定制模板：{number} / 客户"
