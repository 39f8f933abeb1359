"""The dialog driven end to end through the fake channel, the bus, the outbox and the database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.fake import FakeChannel
from dialog.conversations import DialogSettings, RequiredField
from gateway.appkeys import BUS, DIALOG, DIALOG_SETTINGS
from tests.helpers import eventually, running_app, token
from ticket_core.messages import CustomerIdentity, InboundMessage

_ids = itertools.count()
NO_RULES_AT = "2026-11-18T10:00:00+08:00"  # a Wednesday inside business hours


class Customer:
    """One customer writing to the fake channel; `say` returns the dialog's result for the message."""

    def __init__(self, client: Any, fake: FakeChannel, user: str = "u1") -> None:
        self.client = client
        self.fake = fake
        self.user = user

    async def send(self, text: str = "", *, kind: str = "text", **fields: str) -> dict[str, Any]:
        n = next(_ids)
        msg = InboundMessage(
            channel="fake",
            account="main",
            external_id=str(n),
            dedup_key=f"fake:{self.user}:{n}",
            identity=CustomerIdentity("fake", "main", self.user, display_name="测试用户"),
            conversation_key=f"fake:main:{self.user}",
            kind=kind,
            text=text,
            fields=fields,
            meta={"reply_to": self.user},
        )
        bus = self.client.app[BUS]
        accepted = await bus.publish(msg)
        result = await bus.wait_result(accepted.record_id, 15)
        assert result is not None, f"no result for {text!r}"
        return result

    async def received(self, count: int) -> list[str]:
        async def enough() -> bool:
            return len([m for m in self.fake.sent if m.recipient == self.user]) >= count

        await eventually(enough, timeout=10)
        return [m.text for m in self.fake.sent if m.recipient == self.user]


@pytest.fixture
async def chat(make_settings: Any, mongo: Any) -> Any:
    fake = FakeChannel()
    settings = make_settings(seed_demo=True)
    await mongo.rules.insert_one(
        {"name": "placeholder", "enabled": False, "order": 1, "conditions": {}, "actions": {}}
    )  # keeps the demo out-of-hours rule out of these tests
    async with running_app(settings, channels=[fake]) as client:
        yield Customer(client, fake), mongo


async def test_suggest_pick_solved_records_a_deflection_and_no_ticket(chat: Any) -> None:
    customer, mongo = chat
    result = await customer.send("打印机卡纸了怎么办")
    assert result["action"] == "suggested"
    assert result["articles"][0] == "zh-printer-paper-jam"
    [suggestion] = await customer.received(1)
    assert "打印机卡纸如何处理" in suggestion and "回复 1-" in suggestion
    sent = customer.fake.sent[0]
    assert ("1. 打印机卡纸如何处理"[:60], "pick:zh-printer-paper-jam") in sent.buttons
    result = await customer.send("1")
    assert result == {
        "action": "article_sent",
        "article": "zh-printer-paper-jam",
        "outbox_ids": result["outbox_ids"],
    }
    texts = await customer.received(3)
    assert "/kb/zh-printer-paper-jam" in texts[1] and "解决您的问题了吗" in texts[2]
    result = await customer.send("是的")
    assert result["action"] == "deflected"
    assert "很高兴帮到您" in (await customer.received(4))[3]
    assert await mongo.tickets.count_documents({}) == 0
    assert (
        await mongo.deflections.count_documents({"article_id": "zh-printer-paper-jam", "channel": "fake"})
        == 1
    )
    article = await mongo.articles.find_one({"_id": "zh-printer-paper-jam"})
    assert article["stats"]["deflections"] == 1 and article["stats"]["deflections_by_channel"]["fake"] == 1
    assert article["stats"]["views"] == 1


async def test_not_solved_creates_a_ticket_with_transcript_and_suggestions(chat: Any) -> None:
    customer, mongo = chat
    await customer.send("路由器连上了但是上不了网")
    await customer.send("1")
    result = await customer.send("没解决")
    assert result["action"] == "ticket_created"
    ticket = await mongo.tickets.find_one({"number": result["ticket_number"]})
    assert ticket["subject"].startswith("路由器连上了但是上不了网")
    assert "zh-router-no-internet" in ticket["fields"]["suggested_articles"]
    assert "[customer] 没解决" in ticket["description"] and "[bot]" in ticket["description"]
    assert ticket["category"] == "router" and ticket["channel"] == "fake" and ticket["reply_to"] == "u1"
    texts = await customer.received(4)
    assert result["ticket_number"] in texts[-1]  # the ticket_created notification


async def test_follow_up_goes_to_the_open_ticket_and_reopens_within_window(chat: Any) -> None:
    customer, mongo = chat
    created = await customer.send("人工")
    assert created["action"] == "ticket_created"  # "人工" hands over at once
    number = created["ticket_number"]
    follow = await customer.send("补充一下：型号是 HP 1020")
    assert follow == {**follow, "action": "comment", "ticket_number": number}
    headers = await token(customer.client, "agent")
    res = await customer.client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)
    assert res.status == 200
    again = await customer.send("又坏了")
    assert again["action"] == "comment" and again["ticket_number"] == number
    ticket = await mongo.tickets.find_one({"number": number})
    assert ticket["status"] == "open"  # reopened within the window
    assert await mongo.tickets.count_documents({}) == 1
    kinds = [e["type"] for e in await mongo.ticket_events.find({"number": number}).sort("at", 1).to_list()]
    assert kinds.count("customer_comment") == 2


async def test_status_query_lists_open_tickets(chat: Any) -> None:
    customer, _ = chat
    none = await customer.send("进度")
    assert none["action"] == "status" and none["tickets"] == []
    created = await customer.send("human")
    status = await customer.send("status")
    assert status["tickets"] == [created["ticket_number"]]
    texts = await customer.received(2)
    assert created["ticket_number"] in texts[-1]


async def test_required_fields_are_collected_one_by_one_with_validation(chat: Any) -> None:
    customer, mongo = chat
    await mongo.settings.replace_one(
        {"_id": "dialog"},
        DialogSettings(
            required_fields={
                "order": [
                    RequiredField(
                        "order_number",
                        {"zh-CN": "订单号", "en": "order number"},
                        pattern=r"\d{6,20}",
                        skippable=False,
                    ),
                    RequiredField("phone", {"zh-CN": "联系电话", "en": "phone"}, skippable=True),
                ]
            }
        ).to_doc(),
        upsert=True,
    )
    await _reload_dialog_settings(customer.client)
    await customer.send("订单什么时候发货")
    result = await customer.send("0")
    assert result == {**result, "action": "collecting", "field": "order_number"}
    bad = await customer.send("abc")
    assert bad["invalid"] is True
    refused_skip = await customer.send("跳过")
    assert refused_skip["invalid"] is True
    result = await customer.send("12345678")
    assert result["field"] == "phone"
    result = await customer.send("跳过")
    assert result["action"] == "ticket_created"
    ticket = await mongo.tickets.find_one({"number": result["ticket_number"]})
    assert ticket["fields"]["order_number"] == "12345678" and ticket["fields"]["phone"] == ""
    texts = await customer.received(5)
    assert any("订单号" in t for t in texts) and any("格式不正确" in t for t in texts)


async def _reload_dialog_settings(client: Any) -> None:
    await client.app[DIALOG_SETTINGS].load()


async def test_english_customer_gets_english_replies(chat: Any) -> None:
    customer, _ = chat
    result = await customer.send("my printer is offline")
    assert result["action"] == "suggested" and result["articles"][0] == "en-printer-offline"
    [text] = await customer.received(1)
    assert "Reply 1-" in text


async def test_buttons_and_actions_work_like_numbers(chat: Any) -> None:
    customer, mongo = chat
    welcome = await customer.send(kind="action", action="welcome")
    assert welcome["action"] == "welcome"
    await customer.send("洗衣机不脱水")
    picked = await customer.send(kind="action", action="pick", value="zh-washer-no-spin")
    assert picked["action"] == "article_sent"
    result = await customer.send(kind="action", action="solved", value="no")
    assert result["action"] == "ticket_created"
    assert await mongo.tickets.count_documents({}) == 1


async def test_no_answer_in_time_hands_over(chat: Any) -> None:
    customer, mongo = chat
    first = await customer.send("冰箱不制冷")
    assert first["action"] == "suggested", first
    past = datetime.now(UTC) - timedelta(minutes=1)
    await mongo.conversations.update_one({"key": "fake:main:u1"}, {"$set": {"expires_at": past}})
    from dialog.conversations import ConversationStore
    from gateway.install_dialog import DialogTimeouts

    sweeper = DialogTimeouts(ConversationStore(mongo), customer.client.app[BUS])
    assert await sweeper.run_once() == 1

    async def ticket() -> Any:
        return await mongo.tickets.find_one({})

    made = await eventually(ticket, timeout=10)
    assert "冰箱不制冷" in made["description"]

    async def idle() -> bool:  # the turn saves the conversation after it made the ticket
        return (await mongo.conversations.find_one({"key": "fake:main:u1"}))["state"] == "idle"

    await eventually(idle, timeout=10)
    assert await sweeper.run_once() == 0  # nothing is waiting any more


async def test_out_of_hours_rule_answers_only_outside_business_hours(make_settings: Any, mongo: Any) -> None:
    fake = FakeChannel()
    async with running_app(make_settings(seed_demo=True), channels=[fake]) as client:
        headers = await token(client, "admin")
        rules = await (await client.get("/api/v1/rules", headers=headers)).json()
        assert [r["name"] for r in rules["items"]] == ["Out of hours / 非工作时间"]
        inside = await (
            await client.post(
                "/api/v1/rules/dry-run",
                headers=headers,
                json={"text": "打印机坏了", "channel": "wechat", "at": NO_RULES_AT},
            )
        ).json()
        outside = await (
            await client.post(
                "/api/v1/rules/dry-run",
                headers=headers,
                json={"text": "打印机坏了", "channel": "wechat", "at": "2026-11-21T23:00:00+08:00"},
            )
        ).json()
        holiday_rule = dict(rules["items"][0])
        assert inside["fired"] == [] and outside["fired"] == ["Out of hours / 非工作时间"]
        assert "9:00-18:00" in outside["replies"][0]
        # live behaviour equals the dry run: the engine's clock decides
        engine = client.app[DIALOG]
        customer = Customer(client, fake, user="night-owl")
        engine.clock = lambda: datetime.fromisoformat("2026-11-21T23:00:00+08:00")
        result = await customer.send("打印机卡纸了")
        assert result["rules"] == ["Out of hours / 非工作时间"]
        first = (await customer.received(2))[0]
        assert first == outside["replies"][0]
        day = Customer(client, fake, user="day-bird")
        engine.clock = lambda: datetime.fromisoformat(NO_RULES_AT)
        result = await day.send("打印机卡纸了")
        assert "rules" not in result
        assert holiday_rule["conditions"]["business_hours"]["when"] == "outside"
        bad = await client.post(
            "/api/v1/rules", headers=headers, json={"name": "x", "conditions": {"regex": "("}}
        )
        assert bad.status == 422 and "conditions.regex" in (await bad.json())["error"]["fields"]
