"""A WeChat follower end to end: suggestions, a ticket, and status updates by customer-service text
inside the 48-hour window and by template message outside it. The gateway runs against the fake
WeChat API and the embedded database; the agent uses the REST API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.settings import WeChatAccount
from channels.wechat.channel import WeChatChannel
from gateway.appkeys import CHANNELS, DATABASE
from gateway.wiring import installers
from tests.conftest import SettingsFactory
from tests.fakes.wechat_api import FakeWeChatApi, WeChatCallbackSigner
from tests.helpers import eventually, running_app, token
from ticket_core.secret import Secret

TOKEN = "e2e-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wxfake0000000001"
HOURS = 3600.0
TEMPLATES = {"ticket_created": "TPL_STATUS", "status_changed": "TPL_STATUS", "solved": "TPL_STATUS"}


def dialog_engine_installed() -> bool:
    return any(i.__module__.endswith("install_dialog") for i in installers())


@dataclass
class Shift:
    """Moves the fake platform's clock and the gateway's WeChat clock together."""

    seconds: float = 0.0
    channels: list[WeChatChannel] = field(default_factory=list)

    def __call__(self) -> float:
        return time.time() + self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        for channel in self.channels:
            channel.clock.advance(seconds)


@dataclass
class Follower:
    client: TestClient[Any, Any]
    api: FakeWeChatApi
    sign: WeChatCallbackSigner
    openid: str
    _ids: int = 0

    async def say(self, text: str) -> str:
        """Post the message as WeChat would; returns the passive reply's text ('' for "success")."""
        self._ids += 1
        self.api.user_wrote(self.openid, at=self.sign.clock())  # the platform opens its window too
        msg_id = f"{abs(hash(self.openid)) % 10**8}{self._ids:04d}"
        query, body = self.sign.sign(self.sign.text(self.openid, text, msg_id=msg_id))
        resp = await self.client.post("/channels/wechat/main", params=query, data=body)
        assert resp.status == 200, await resp.text()
        answer = await resp.text()
        if answer == "success":
            return ""
        return str(self.sign.open_reply(answer)["Content"])

    def received(self, msgtype: str | None = None) -> list[dict[str, Any]]:
        return [
            d
            for d in self.api.delivered
            if d.get("touser") == self.openid and (msgtype is None or d.get("msgtype", "template") == msgtype)
        ]

    async def templates(self, count: int) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]] | None:
            found = [d for d in self.received() if "template_id" in d]
            return found if len(found) >= count else None

        result: list[dict[str, Any]] = await eventually(enough)
        return result

    async def texts(self, contains: str) -> list[str]:
        async def found() -> list[str] | None:
            texts = [d["text"]["content"] for d in self.received("text")]
            return texts if any(contains in t for t in texts) else None

        result: list[str] = await eventually(found)
        return result


@pytest.fixture
async def gateway(
    make_settings: SettingsFactory, mongo: Any
) -> AsyncIterator[tuple[Any, FakeWeChatApi, Shift]]:
    shift = Shift()
    # The demo out-of-hours rule would hand every message to a person at night: keep it out.
    await mongo.rules.insert_one(
        {"name": "placeholder", "enabled": False, "order": 1, "conditions": {}, "actions": {}}
    )
    async with FakeWeChatApi(app_id=APP_ID, clock=shift) as api:
        account = WeChatAccount(
            name="main",
            app_id=APP_ID,
            app_secret=Secret(api.app_secret),
            token=Secret(TOKEN),
            encoding_aes_key=Secret(AES_KEY),
            mode="safe",
            api_base_url=api.base_url,
            templates=TEMPLATES,
        )
        async with running_app(make_settings(wechat_accounts=(account,), seed_demo=True)) as client:
            channel = client.app[CHANNELS].get("wechat", "main")
            assert isinstance(channel, WeChatChannel)
            shift.channels.append(channel)
            yield client, api, shift


def follower(client: Any, api: FakeWeChatApi, shift: Shift, openid: str) -> Follower:
    api.set_user(openid)
    sign = WeChatCallbackSigner(
        token=TOKEN, mode="safe", encoding_aes_key=AES_KEY, app_id=APP_ID, clock=shift
    )
    return Follower(client, api, sign, openid)


async def report_a_jam(user: Follower, mongo: Any) -> dict[str, Any]:
    """打印机卡纸了 -> suggestions -> 0 (a person) -> the ticket; returns the ticket document."""
    reply = await user.say("打印机卡纸了")
    first = await mongo.inbox.find_one({"message.identity.external_id": user.openid})
    assert first is not None
    await eventually(lambda: _state(mongo, first["_id"], "done"))
    if dialog_engine_installed():
        record = await mongo.inbox.find_one({"_id": first["_id"]})
        assert record["result"]["action"] == "suggested"
        # The suggestions came back as the passive reply, or through the customer-service API (sent
        # by the outbox after the record is done: wait for it).
        shown = reply or "\n".join(await user.texts("1."))
        assert "1." in shown and ("回复" in shown or "reply" in shown.lower()), shown
    reply = await user.say("0")

    async def ticket() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await mongo.tickets.find_one(
            {"conversation_key": f"wechat:main:{user.openid}"}
        )
        return doc

    if reply and await ticket() is None:
        # The dialog asks for details a category needs (the printer model); any answer will do.
        await user.say("跳过")
    found: dict[str, Any] = await eventually(ticket)
    return found


async def _state(mongo: Any, record_id: Any, state: str) -> bool:
    doc = await mongo.inbox.find_one({"_id": record_id}, {"state": 1})
    return bool(doc and doc["state"] == state)


async def test_outside_the_window_a_solved_ticket_is_announced_by_template_message(
    gateway: tuple[Any, FakeWeChatApi, Shift], mongo: Any
) -> None:
    client, api, shift = gateway
    user = follower(client, api, shift, "o_e2e_outside")
    ticket = await report_a_jam(user, mongo)
    number = ticket["number"]
    # Inside the window the confirmation is a customer-service text with the number.
    await user.texts(number)
    assert not [d for d in user.received() if "template_id" in d]

    shift.advance(49 * HOURS)  # the follower has not written for two days
    headers = await token(client, "agent")
    resp = await client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)
    assert resp.status == 200, await resp.text()
    [template] = await user.templates(1)
    assert template["template_id"] == "TPL_STATUS"
    values = {k: v["value"] for k, v in template["data"].items()}
    assert values["keyword1"] == number and values["keyword2"] == "已解决"
    assert "评分" in values["remark"]  # the CSAT request

    async def sent() -> dict[str, Any] | None:
        # The fake answers before the outbox records the result: wait for the record to settle.
        query = {"event": "status_changed", "ticket_id": str(ticket["_id"]), "state": "sent"}
        found: dict[str, Any] | None = await mongo.outbox.find_one(query)
        return found

    record = await eventually(sent)
    assert record["result"]["via"] == "template" and record["platform_id"]


async def test_inside_the_window_updates_are_customer_service_text_and_43004_ends_dead(
    gateway: tuple[Any, FakeWeChatApi, Shift], mongo: Any
) -> None:
    client, api, shift = gateway
    user = follower(client, api, shift, "o_e2e_inside")
    ticket = await report_a_jam(user, mongo)
    number = ticket["number"]
    headers = await token(client, "agent")
    resp = await client.patch(f"/api/v1/tickets/{number}", json={"status": "pending"}, headers=headers)
    assert resp.status == 200
    texts = await user.texts("等待您回复")
    assert any(number in t for t in texts)
    assert not [d for d in user.received() if "template_id" in d]

    api.users[user.openid].following = False  # the follower unfollowed
    resp = await client.patch(f"/api/v1/tickets/{number}", json={"status": "solved"}, headers=headers)
    assert resp.status == 200

    async def dead() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await mongo.outbox.find_one(
            {"ticket_id": str(ticket["_id"]), "event": "status_changed", "state": "dead"}
        )
        return doc

    record = await eventually(dead)
    assert "43004" in record["last_error"] and record["error_code"] == 43004
    assert record["attempts"] == 1
    db = client.app[DATABASE].db
    assert await db.outbox.count_documents({"ticket_id": str(ticket["_id"]), "state": "pending"}) == 0
