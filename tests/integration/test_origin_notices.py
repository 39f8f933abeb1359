"""Each status change: exactly one customer notice, on the channel the ticket came from (WeChat,
Telegram, the fake channel), none for internal notes; checked on the outbox records (delivery through
each platform is covered by the channels' own tests)."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from gateway.appkeys import CUSTOMERS, TICKET_SERVICE
from tests.helpers import running_app, token
from ticket_core.messages import CustomerIdentity
from ticket_core.model import Actor
from ticket_core.service import NewTicket


@pytest.mark.parametrize(
    ("channel", "account", "reply_to"), [("wechat", "main", "openid-1"), ("telegram", "support", "4242")]
)
async def test_one_notice_per_status_change_on_the_origin_channel(
    settings: Any, mongo: Any, channel: str, account: str, reply_to: str
) -> None:
    async with running_app(settings) as client:
        identity = CustomerIdentity(channel, account, reply_to)
        customer = await client.app[CUSTOMERS].resolve(identity, locale="zh-CN")
        new = NewTicket(
            subject="设备无法开机",
            description="按电源键没反应",
            channel=channel,
            account=account,
            customer=customer,
            conversation_key=f"{channel}:{account}:{reply_to}",
            reply_to=reply_to,
            locale="zh-CN",
        )
        ticket, _ = await client.app[TICKET_SERVICE].create(new, Actor("customer", customer.id))
        headers = await token(client, "agent")
        for status in ("open", "pending", "on_hold", "open", "solved", "open", "solved", "closed"):
            res = await client.patch(
                f"/api/v1/tickets/{ticket.number}", json={"status": status}, headers=headers
            )
            assert res.status == 200, await res.text()
        note = {"text": "内部：等配件", "type": "internal"}
        await client.post(f"/api/v1/tickets/{ticket.number}/replies", json=note, headers=headers)
        records = [d async for d in mongo.outbox.find({"ticket_id": ticket.id, "event": "status_changed"})]
        assert len(records) == 8
        assert {(d["channel"], d["account"], d["recipient"]) for d in records} == {
            (channel, account, reply_to)
        }
        texts = [d["message"]["text"] async for d in mongo.outbox.find({"ticket_id": ticket.id})]
        assert not any("等配件" in t for t in texts)
        # WeChat's solved text asks for a 1-5 reply (its own template asks at every resolution); the
        # ticket is marked as asked, so such a reply counts as a rating. Telegram asks with buttons.
        asked = [d["message"]["text"] for d in records if "1-5" in d["message"]["text"]]
        assert bool(asked) == (channel == "wechat")
        marked = await mongo.tickets.find_one({"_id": ObjectId(ticket.id)})
        assert ("csat_asked_at" in marked) == (channel == "wechat")
