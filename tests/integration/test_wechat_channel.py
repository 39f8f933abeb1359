"""The WeChat callback endpoint and sender in the running gateway, against the fake WeChat API and
the embedded database (every request signed as WeChat signs it)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.settings import WeChatAccount
from channels.wechat.channel import WeChatChannel
from channels.wechat.xml_parse import parse_callback_xml
from gateway.appkeys import CHANNELS, DATABASE
from gateway.config import Settings
from tests.conftest import CORPORA, SettingsFactory
from tests.fakes.wechat_api import FakeWeChatApi, WeChatCallbackSigner
from tests.helpers import eventually, running_app
from ticket_core.errors import StorageUnavailable
from ticket_core.messages import OutboundMessage
from ticket_core.secret import Secret

XML_FILES = sorted((CORPORA / "wechat" / "wechatpy_xml").glob("*.xml"))
CAPTURE = json.loads((CORPORA / "wechat" / "safe_mode_capture" / "safe_mode_request.json").read_text())
CAPTURE_TOKEN = "dczmnau31ea9nzcn13i91uedjdal"  # the capture's own keys (corpora SOURCES.md)
CAPTURE_KEY = "pz2Zl2by0oZQ6AUV4EvnbF7A7VRUvrLN1vqnxsUjmTW"
CAPTURE_APP_ID = "wxefe41fdee1714229"
TOKEN = "test-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wxfake0000000001"


def account(name: str, api: FakeWeChatApi, mode: str = "plaintext", **extra: Any) -> WeChatAccount:
    return WeChatAccount(
        name=name,
        app_id=api.app_id,
        app_secret=Secret(api.app_secret),
        token=Secret(TOKEN),
        encoding_aes_key=Secret(AES_KEY if mode != "plaintext" else ""),
        mode=mode,
        api_base_url=api.base_url,
        **extra,
    )


def signer(mode: str = "plaintext") -> WeChatCallbackSigner:
    return WeChatCallbackSigner(token=TOKEN, mode=mode, encoding_aes_key=AES_KEY, app_id=APP_ID)


def wechat(client: TestClient[Any, Any], name: str) -> WeChatChannel:
    channel = client.app[CHANNELS].get("wechat", name)
    assert isinstance(channel, WeChatChannel)
    return channel


async def post(
    client: TestClient[Any, Any], name: str, sign: WeChatCallbackSigner, xml: str | bytes, **kw: Any
) -> tuple[int, str]:
    query, body = sign.sign(xml, **kw)
    resp = await client.post(f"/channels/wechat/{name}", params=query, data=body)
    return resp.status, await resp.text()


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatApi]:
    async with FakeWeChatApi(app_id=APP_ID) as fake:
        fake.media["MEDIA_IMG"] = (b"\xff\xd8\xff\xe0fake-jpeg", "image/jpeg", "photo.jpg")
        fake.media["MEDIA_VOICE"] = (b"#!AMR\nfake", "audio/amr", "voice.amr")
        yield fake


def settings_with(make_settings: SettingsFactory, *accounts: WeChatAccount, kb: bool = False) -> Settings:
    return make_settings(wechat_accounts=tuple(accounts), seed_demo=kb)


async def with_demo_kb(make_settings: SettingsFactory, mongo: Any, *accounts: WeChatAccount) -> Settings:
    """The demo knowledge base, without the demo out-of-hours rule (it would hand off at night)."""
    await mongo.rules.insert_one(
        {"name": "placeholder", "enabled": False, "order": 1, "conditions": {}, "actions": {}}
    )
    return settings_with(make_settings, *accounts, kb=True)


# -- URL verification and authentication ------------------------------------------------------------


async def test_get_answers_echostr_and_refuses_a_bad_signature(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    async with running_app(settings_with(make_settings, account("main", api))) as client:
        query = signer().echo_query("echo-123")
        resp = await client.get("/channels/wechat/main", params=query)
        assert (resp.status, await resp.text()) == (200, "echo-123")
        query = signer().echo_query("echo-456") | {"signature": "0" * 40}
        assert (await client.get("/channels/wechat/main", params=query)).status == 403
        assert (await client.get("/channels/wechat/nope", params=query)).status == 404


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_replay_and_wrong_signature_get_403_and_store_nothing(
    make_settings: SettingsFactory, api: FakeWeChatApi, mode: str
) -> None:
    sign = signer(mode)
    async with running_app(settings_with(make_settings, account("main", api, mode))) as client:
        db = client.app[DATABASE].db
        # A captured request replayed later: timestamp outside the window.
        status, _ = await post(
            client, "main", sign, sign.text("o_a", "old", msg_id=1), timestamp=time.time() - 3600
        )
        assert status == 403
        # A wrong signature (the token is not ours).
        forged = WeChatCallbackSigner(
            token="not-the-token", mode=mode, encoding_aes_key=AES_KEY, app_id=APP_ID
        )
        assert (await post(client, "main", forged, forged.text("o_a", "forged", msg_id=2)))[0] == 403
        # The same request twice: the second reuses the nonce.
        query, body = sign.sign(sign.text("o_a", "once", msg_id=3))
        first = await client.post("/channels/wechat/main", params=query, data=body)
        assert first.status == 200
        again = await client.post("/channels/wechat/main", params=query, data=body)
        assert again.status == 403
        if mode == "safe":  # a ciphertext changed in transit no longer matches msg_signature
            query, body = sign.sign(sign.text("o_a", "tampered", msg_id=4))
            body = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
            assert (await client.post("/channels/wechat/main", params=query, data=body)).status == 403
        keys = [d["dedup_key"] async for d in db.inbox.find({}, {"dedup_key": 1})]
        assert keys == ["wechat:main:3"]


async def test_hostile_xml_and_oversized_bodies_are_refused(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    sign = signer()
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">' for i in range(9)
        )
        + "]><xml><Content>&lol8;</Content></xml>"
    )
    entity = (
        '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<xml><ToUserName>a</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>9</MsgId></xml>"
    )
    internal = '<!DOCTYPE xml [<!ENTITY a "b">]><xml><Content>&a;</Content></xml>'
    big = sign.text("o_big", "x" * 70_000, msg_id=10)
    async with running_app(
        settings_with(make_settings, account("main", api, max_body_bytes=64 * 1024))
    ) as client:
        for body in (laughs, entity, internal, "<xml><unclosed></xml>", "not xml at all"):
            status, text = await post(client, "main", sign, body)
            assert 400 <= status < 500, (status, text)
        status, _ = await post(client, "main", sign, big)
        assert status == 413
        assert await client.app[DATABASE].db.inbox.count_documents({}) == 0


async def test_database_down_answers_503_so_wechat_retries(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    sign = signer()
    async with running_app(settings_with(make_settings, account("main", api))) as client:
        await client.app[DATABASE].client.close()
        status, _ = await post(client, "main", sign, sign.text("o_a", "hello", msg_id=77))
        assert status == 503


class _FailsOnce:
    """The bus, except that the first publish finds the database unavailable."""

    def __init__(self, intake: Any) -> None:
        self._intake = intake
        self.failed = False

    async def publish(self, msg: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise StorageUnavailable("the database did not answer")
        return await self._intake.publish(msg)

    async def wait_result(self, record_id: str, timeout: float) -> Any:
        return await self._intake.wait_result(record_id, timeout)


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_a_request_that_could_not_be_stored_is_taken_when_repeated_and_refused_after(
    make_settings: SettingsFactory, api: FakeWeChatApi, mode: str
) -> None:
    # A store that failed must not burn the nonce, or WeChat's identical retry would be refused and
    # the message lost; once stored, the same request again is a replay. Safe mode keeps the nonce on
    # the inbox record (one write per callback); plaintext mode, whose signature does not cover the
    # body, must check it first, in the nonce cache, and forgets it when the store fails.
    sign = signer(mode)
    async with running_app(settings_with(make_settings, account("main", api, mode))) as client:
        channel = wechat(client, "main")
        channel._intake = _FailsOnce(channel._intake)
        query, body = sign.sign(sign.text("o_a", "stored on the second try", msg_id=78))
        statuses = [
            (await client.post("/channels/wechat/main", params=query, data=body)).status for _ in range(3)
        ]
        assert statuses == [503, 200, 403]
        db = client.app[DATABASE].db
        [record] = await db.inbox.find({}).to_list()
        assert record["dedup_key"] == "wechat:main:78"
        in_cache = await db.wechat_nonces.count_documents({})
        if mode == "safe":
            assert record["message"]["meta"]["nonce_key"].endswith(query["nonce"])
            assert in_cache == 0
        else:
            assert "nonce_key" not in record["message"]["meta"]
            assert in_cache == 1


# -- every corpus body --------------------------------------------------------------------------------


async def test_every_corpus_file_is_stored_in_plaintext_and_safe_mode(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    assert len(XML_FILES) == 51
    accounts = (
        account("plain", api, "plaintext", reply_budget_seconds=0.2),
        account("safe", api, "safe", reply_budget_seconds=0.2),
    )
    async with running_app(settings_with(make_settings, *accounts)) as client:
        db = client.app[DATABASE].db
        for name, mode in (("plain", "plaintext"), ("safe", "safe")):
            sign = signer(mode)
            for path in XML_FILES:
                status, text = await post(client, name, sign, path.read_bytes())
                assert status == 200, (name, path.name, status, text)
                payload = parse_callback_xml(path.read_bytes())
                record = await db.inbox.find_one({"dedup_key": f"wechat:{name}:{payload.dedup_key}"})
                assert record is not None, (name, path.name)
        # Six corpus messages share one MsgId, so WeChat would see them as one (the first, a text).
        kinds = {d["message"]["kind"] async for d in db.inbox.find({"account": "plain"})}
        assert kinds == {"text", "event", "action"}
        # Unknown message types are kept with their raw fields, never dropped (given its own MsgId:
        # in the corpus it shares one with the text message).
        device_text = (XML_FILES[0].parent / "test_parser_020.xml").read_bytes()
        await post(client, "plain", signer(), device_text.replace(b"1234567890123456", b"99887766"))
        unknown = await db.inbox.find_one({"dedup_key": "wechat:plain:99887766"})
        assert unknown is not None and unknown["message"]["kind"] == "event"
        assert unknown["message"]["fields"]["DeviceID"] == "123"
        assert await db.quarantine.count_documents({}) == 0


async def test_the_real_safe_mode_capture_is_accepted_with_its_own_keys(
    make_settings: SettingsFactory,
) -> None:
    async with FakeWeChatApi(app_id=CAPTURE_APP_ID) as fake:
        capture = WeChatAccount(
            name="capture",
            app_id=CAPTURE_APP_ID,
            app_secret=Secret(fake.app_secret),
            token=Secret(CAPTURE_TOKEN),
            encoding_aes_key=Secret(CAPTURE_KEY),
            mode="safe",
            api_base_url=fake.base_url,
        )
        async with running_app(settings_with(make_settings, capture)) as client:
            ts = float(CAPTURE["query"]["timestamp"])
            # Without the clock set, the 2020 request is rightly refused as a replay.
            resp = await client.post(
                "/channels/wechat/capture", params=CAPTURE["query"], data=CAPTURE["body"]
            )
            assert resp.status == 403
            wechat(client, "capture").clock.freeze(ts)
            resp = await client.post(
                "/channels/wechat/capture", params=CAPTURE["query"], data=CAPTURE["body"]
            )
            assert resp.status == 200, await resp.text()
            reply = await resp.text()
            clear = parse_callback_xml(CAPTURE["clear_body"].encode())
            record = await client.app[DATABASE].db.inbox.find_one(
                {"dedup_key": f"wechat:capture:{clear.msg_id}"}
            )
            assert record is not None
            msg = record["message"]
            assert (msg["kind"], msg["text"], msg["external_id"]) == ("text", clear.text, clear.msg_id)
            assert msg["identity"]["external_id"] == clear.from_user == CAPTURE["query"]["openid"]
            assert msg["meta"]["official_account"] == clear.to_user
            assert msg["meta"]["create_time"] == clear.create_time
            assert msg["conversation_key"] == f"wechat:capture:{clear.from_user}"
            assert msg["locale"] == "zh-CN" and msg["meta"]["reply_to"] == clear.from_user
            if reply != "success":  # a passive reply: encrypted and signed with the account's keys
                sign = WeChatCallbackSigner(
                    token=CAPTURE_TOKEN, mode="safe", encoding_aes_key=CAPTURE_KEY, app_id=CAPTURE_APP_ID
                )
                opened = sign.open_reply(reply)
                assert opened["ToUserName"] == clear.from_user and opened["MsgType"] == "text"


# -- mapping ------------------------------------------------------------------------------------------


async def test_messages_and_events_map_to_the_message_conventions(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    sign = signer()
    menu = {
        "REPORT": "start_report",
        "STATUS": "check_status",
        "PRINTERS": "top_articles:printer",
        "HUMAN": "human",
    }
    acct = account("main", api, menu=menu, reply_budget_seconds=0)
    o = "o_mapper"
    gh = sign.official_account
    now = int(time.time())
    head = f"<xml><ToUserName>{gh}</ToUserName><FromUserName>{o}</FromUserName><CreateTime>{now}</CreateTime>"
    bodies = {
        "text": sign.text(o, "你好", msg_id=101),
        "image": head
        + "<MsgType>image</MsgType><PicUrl>http://x/p.jpg</PicUrl><MediaId>MEDIA_IMG</MediaId><MsgId>102</MsgId></xml>",
        "voice": head + "<MsgType>voice</MsgType><MediaId>MEDIA_VOICE</MediaId><Format>amr</Format>"
        "<Recognition>打印机卡纸了</Recognition><MsgId>103</MsgId></xml>",
        "subscribe": sign.event(o, "subscribe", key="qrscene_store42", extra="<Ticket>T1</Ticket>"),
        "click": sign.event("o_clicker", "CLICK", key="PRINTERS"),
        "unmapped": sign.event("o_clicker2", "CLICK", key="SOMETHING_ELSE"),
        "view": sign.event("o_viewer", "VIEW", key="https://example.com/kb"),
        "unsubscribe": sign.event("o_leaver", "unsubscribe"),
    }
    # Intake only: a dialog reply would spend one of the window's five messages before we look.
    settings = make_settings(wechat_accounts=(acct,), bus={"dispatch": False})
    async with running_app(settings) as client:
        db = client.app[DATABASE].db
        for body in bodies.values():
            assert (await post(client, "main", sign, body))[0] == 200

        async def msg(query: dict[str, Any]) -> dict[str, Any]:
            doc = await db.inbox.find_one(query)
            assert doc is not None, query
            return dict(doc["message"])

        text = await msg({"dedup_key": "wechat:main:101"})
        assert (text["kind"], text["text"], text["conversation_key"]) == ("text", "你好", f"wechat:main:{o}")
        image = await msg({"dedup_key": "wechat:main:102"})
        assert image["kind"] == "image" and image["fields"]["media_id"] == "MEDIA_IMG"
        assert image["attachments"] and image["attachments"][0]["content_type"] == "image/jpeg"
        voice = await msg({"dedup_key": "wechat:main:103"})
        assert (voice["kind"], voice["text"]) == ("voice", "打印机卡纸了")
        assert voice["attachments"][0]["size"] == len(api.media["MEDIA_VOICE"][0])
        follow = await msg({"message.identity.external_id": o, "message.fields.event": "subscribe"})
        assert (follow["kind"], follow["fields"]["action"], follow["fields"]["qr_scene"]) == (
            "action",
            "welcome",
            "store42",
        )
        click = await msg({"message.identity.external_id": "o_clicker"})
        assert (click["kind"], click["fields"]["action"], click["fields"]["value"]) == (
            "action",
            "top_articles",
            "printer",
        )
        unmapped = await msg({"message.identity.external_id": "o_clicker2"})
        assert unmapped["kind"] == "event" and unmapped["fields"]["EventKey"] == "SOMETHING_ELSE"
        view = await msg({"message.identity.external_id": "o_viewer"})
        assert (view["kind"], view["fields"]["event"]) == ("event", "view")
        gone = await msg({"message.identity.external_id": "o_leaver"})
        assert (gone["kind"], gone["fields"]["event"]) == ("event", "unsubscribe")
        # The follow and the click open the one-minute window; the message the 48-hour one.
        window = wechat(client, "main")._window
        await window.refresh(o)
        state = await window.state(o)
        assert state is not None and state["msg_left"] == 5 and state["evt_left"] == 3


async def test_template_job_finish_records_the_delivery_result(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    sign = signer()
    async with running_app(
        settings_with(make_settings, account("main", api, reply_budget_seconds=0))
    ) as client:
        db = client.app[DATABASE].db
        await db.outbox.insert_one(
            {
                "idempotency_key": "t1",
                "channel": "wechat",
                "state": "sent",
                "platform_id": "200163836",
                "history": [],
            }
        )
        body = sign.event(
            "o_tpl",
            "TEMPLATESENDJOBFINISH",
            extra="<MsgID>200163836</MsgID><Status>failed:user block</Status>",
        )
        assert (await post(client, "main", sign, body))[0] == 200
        record = await db.outbox.find_one({"platform_id": "200163836"})
        assert record is not None and record["delivery"]["status"] == "failed:user block"
        event = await db.inbox.find_one({"message.fields.event": "templatesendjobfinish"})
        assert event is not None and event["message"]["kind"] == "event"
        assert event["message"]["fields"]["template_msg_id"] == "200163836"


# -- retries and the passive reply ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_four_concurrent_deliveries_make_one_record_and_one_dialog_turn(
    make_settings: SettingsFactory, mongo: Any, api: FakeWeChatApi, mode: str
) -> None:
    sign = signer(mode)
    openid = "o_retry"
    api.set_user(openid, last_user_message_at=time.time())
    async with running_app(await with_demo_kb(make_settings, mongo, account("main", api, mode))) as client:
        db = client.app[DATABASE].db
        xml = sign.text(openid, "打印机卡纸了", msg_id=5550001)
        # WeChat's retries carry the same body with a fresh nonce and signature.
        answers = await asyncio.gather(*(post(client, "main", sign, xml) for _ in range(4)))
        assert [status for status, _ in answers] == [200] * 4
        assert await db.inbox.count_documents({"dedup_key": "wechat:main:5550001"}) == 1
        # Read the record once it is done: the HTTP answers may come before the dialog finished.
        record = await eventually(
            lambda: db.inbox.find_one({"dedup_key": "wechat:main:5550001", "state": "done"})
        )
        assert record["result"]["action"] == "suggested"
        # One turn: the conversation heard the customer once, and every reply comes from the one record.
        conv = await db.conversations.find_one({"key": f"wechat:main:{openid}"})
        assert conv is not None
        assert [e["text"] for e in conv["transcript"] if e["from"] == "customer"] == ["打印机卡纸了"]
        replies = [
            d async for d in db.outbox.find({"message.meta.conversation_key": f"wechat:main:{openid}"})
        ]
        assert [d["idempotency_key"] for d in replies] == [f"reply:{record['_id']}:1"]
        # At most one answer went back in an HTTP response; the rest said "success".
        passive = [text for _, text in answers if text != "success"]
        assert len(passive) <= 1
        for text in passive:
            opened = sign.open_reply(text)
            assert opened["ToUserName"] == openid and opened["FromUserName"] == sign.official_account
        if not passive:  # then it went through the customer-service API
            await eventually(lambda: _delivered_to(api, openid))


async def _delivered_to(api: FakeWeChatApi, openid: str) -> list[dict[str, Any]]:
    return [d for d in api.delivered if d.get("touser") == openid]


async def test_a_dialog_reply_ready_within_the_budget_is_the_passive_reply(
    make_settings: SettingsFactory, mongo: Any, api: FakeWeChatApi
) -> None:
    sign = signer("safe")
    async with running_app(await with_demo_kb(make_settings, mongo, account("main", api, "safe"))) as client:
        status, text = await post(client, "main", sign, sign.text("o_fast", "打印机卡纸了", msg_id=6660001))
        assert status == 200 and text != "success"
        opened = sign.open_reply(text)
        assert opened["MsgType"] == "text" and "1." in opened["Content"]
        db = client.app[DATABASE].db
        claimed = await db.outbox.find_one({"via": "passive"})
        assert claimed is not None and claimed["state"] == "sent"
        await asyncio.sleep(0.3)
        assert not await _delivered_to(api, "o_fast")  # not sent a second time by the worker


async def test_with_no_budget_the_reply_goes_through_the_customer_service_api(
    make_settings: SettingsFactory, mongo: Any, api: FakeWeChatApi
) -> None:
    sign = signer()
    openid = "o_slow"
    api.set_user(openid, last_user_message_at=time.time())
    acct = account("main", api, reply_budget_seconds=0)
    async with running_app(await with_demo_kb(make_settings, mongo, acct)) as client:
        status, text = await post(client, "main", sign, sign.text(openid, "打印机卡纸了", msg_id=7770001))
        assert (status, text) == (200, "success")

        async def all_sent() -> list[dict[str, Any]] | None:
            sent = await _delivered_to(api, openid)
            return sent if sent and sent[-1]["msgtype"] == "text" else None

        sent = await eventually(all_sent)
        # The suggested articles as news messages (one article each), then the numbered text.
        assert [d["msgtype"] for d in sent[:-1]] == ["news"] * (len(sent) - 1) and len(sent) >= 2
        assert all(len(d["news"]["articles"]) == 1 for d in sent[:-1])
        assert "1." in sent[-1]["text"]["content"]


# -- sending --------------------------------------------------------------------------------------------


async def test_send_errors_end_dead_or_back_off(make_settings: SettingsFactory, api: FakeWeChatApi) -> None:
    api.set_user("o_here", last_user_message_at=time.time())
    api.set_user("o_gone", following=False, last_user_message_at=time.time())
    acct = account("main", api, reply_budget_seconds=0, templates={"status_changed": "TPL_BAD"})
    async with running_app(settings_with(make_settings, acct)) as client:
        outbox = client.app[DATABASE].db.outbox
        from gateway.appkeys import OUTBOX

        box = client.app[OUTBOX]

        def msg(to: str, text: str, **kw: Any) -> OutboundMessage:
            return OutboundMessage(channel="wechat", account="main", recipient=to, text=text, **kw)

        gone = await box.enqueue(msg("o_gone", "hi"), idempotency_key="gone")
        bad = await box.enqueue(
            msg("o_here", "x", kind="template", template={"template_id": "TPL_BAD", "data": {"a": "b"}}),
            idempotency_key="bad-template",
        )

        async def finished(*ids: str) -> dict[str, Any] | None:
            docs = {str(d["_id"]): d async for d in outbox.find({})}
            return docs if all(docs[i]["state"] in ("sent", "dead") for i in ids) else None

        await eventually(lambda: finished(gone, bad))
        api.fail_next(1, http_status=500, path="/cgi-bin/message/custom/send")
        flaky = await box.enqueue(msg("o_here", "after a 500"), idempotency_key="flaky")
        docs = await eventually(lambda: finished(gone, bad, flaky))
        assert docs[gone]["state"] == "dead" and "43004" in docs[gone]["last_error"]
        assert docs[gone]["attempts"] == 1  # no retry storm
        assert docs[bad]["state"] == "dead" and "40037" in docs[bad]["last_error"]
        assert docs[flaky]["state"] == "sent" and docs[flaky]["attempts"] == 2
        # 45009 (daily quota): paced until the quota resets, not retried at once.
        api.fail_next(1, errcode=45009, path="/cgi-bin/message/custom/send")
        await box.enqueue(msg("o_here", "quota"), idempotency_key="quota")

        async def paced() -> dict[str, Any] | None:
            doc = await outbox.find_one({"idempotency_key": "quota"})
            return doc if doc and doc.get("last_error") else None

        doc = await eventually(paced)
        assert doc["state"] == "pending" and "45009" in doc["last_error"]
        assert doc["next_attempt_at"].timestamp() > time.time() + 60


async def test_long_texts_are_split_under_the_limit(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    api.set_user("o_long", last_user_message_at=time.time())
    async with running_app(settings_with(make_settings, account("main", api))) as client:
        text = "。".join(["打印机卡纸时请先关闭电源，打开后盖，沿出纸方向慢慢取出纸张"] * 60)
        result = await wechat(client, "main").send(
            OutboundMessage(channel="wechat", account="main", recipient="o_long", text=text)
        )
        sent = [d["text"]["content"] for d in api.delivered if d.get("touser") == "o_long"]
        assert result.detail["messages"] == len(sent) > 1
        assert all(len(s.encode()) <= 2048 for s in sent)
        assert "".join(sent).replace("。", "") == text.replace("。", "")


# -- one access token for several processes -------------------------------------------------------------


async def test_two_gateways_share_one_access_token(make_settings: SettingsFactory) -> None:
    t = [time.time()]
    async with FakeWeChatApi(app_id=APP_ID, expires_in=600, clock=lambda: t[0]) as fake:
        fake.set_user("o_tok", last_user_message_at=t[0])
        settings = settings_with(make_settings, account("main", fake, reply_budget_seconds=0))
        async with running_app(settings) as one, running_app(settings) as two:
            channels = [wechat(one, "main"), wechat(two, "main")]
            for channel in channels:
                channel.clock.freeze(t[0])
            message = OutboundMessage(
                channel="wechat",
                account="main",
                recipient="o_tok",
                text="",
                kind="template",
                template={"template_id": "TPL_STATUS", "data": {"first": "x"}},
            )

            async def burst() -> None:
                await asyncio.gather(*(c.send(message) for c in channels for _ in range(5)))

            await burst()
            assert fake.stable_token_calls == 1
            await burst()
            assert fake.stable_token_calls == 1
            # Past the refresh point of the short fake expiry: one refresh for both processes.
            t[0] += 500
            for channel in channels:
                channel.clock.freeze(t[0])
            await burst()
            assert fake.stable_token_calls == 2
            t[0] += 500
            for channel in channels:
                channel.clock.freeze(t[0])
            await burst()
            assert fake.stable_token_calls == 3
            assert len(fake.calls("/cgi-bin/message/template/send")) == 40


async def test_compatible_mode_takes_clear_and_encrypted_callbacks(
    make_settings: SettingsFactory, api: FakeWeChatApi
) -> None:
    async with running_app(settings_with(make_settings, account("compat", api, "compatible"))) as client:
        clear, sealed = signer("plaintext"), signer("compatible")
        assert (await post(client, "compat", clear, clear.text("o_c", "明文", msg_id=8801)))[0] == 200
        assert (await post(client, "compat", sealed, sealed.text("o_c", "密文", msg_id=8802)))[0] == 200
        # An encrypted body whose msg_signature does not match is refused even though `signature` is right.
        query, body = sealed.sign(sealed.text("o_c", "forged", msg_id=8803))
        query["msg_signature"] = "0" * 40
        assert (await client.post("/channels/wechat/compat", params=query, data=body)).status == 403
        db = client.app[DATABASE].db
        texts = {d["dedup_key"]: d["message"]["text"] async for d in db.inbox.find({})}
        assert texts == {"wechat:compat:8801": "明文", "wechat:compat:8802": "密文"}
