from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import FormData

from channels.settings import EmailMailbox
from tests.helpers import eventually, running_app, smtp_server, token

GOOD = {"subject": "Printer jams", "description": "Paper jams on every page", "email": "li@example.com"}


async def test_json_submission_creates_a_ticket_with_its_number(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        res = await client.post("/forms/support", json=GOOD)
        body = await res.json()
        assert res.status == 201, body
        number = body["ticket"]["number"]
        assert number.startswith("T-")
        ticket = await mongo.tickets.find_one({"number": number})
        assert ticket["subject"] == "Printer jams"
        assert ticket["channel"] == "webform" and ticket["status"] == "new"
        events = await mongo.ticket_events.find({"ticket_id": str(ticket["_id"])}).to_list()
        assert [e["type"] for e in events] == ["created"]


async def test_form_encoded_and_multipart_with_attachment(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        res = await client.post("/forms/support", data={**GOOD, "subject": "form encoded"})
        assert res.status == 201, await res.text()
        form = FormData()
        for k, v in {**GOOD, "subject": "with photo"}.items():
            form.add_field(k, v)
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
        form.add_field(
            "attachments", png, filename="../../etc/photo.png", content_type="application/octet-stream"
        )
        res = await client.post("/forms/support", data=form, headers={"Accept": "application/json"})
        body = await res.json()
        assert res.status == 201, body
        ticket = await mongo.tickets.find_one({"number": body["ticket"]["number"]})
        [att] = ticket["attachments"]
        assert att["filename"] == "photo.png"  # no path traversal in stored names
        assert att["content_type"] == "image/png"  # sniffed, not trusted
        stored = await mongo["attachments.files"].find_one({})
        assert stored["length"] == len(png)


async def test_same_idempotency_key_three_times_makes_one_ticket(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        answers = []
        for _ in range(3):
            res = await client.post("/forms/support", json=GOOD, headers={"Idempotency-Key": "abc-123"})
            answers.append((res.status, await res.json()))
        assert answers[0][0] == 201
        assert {a[1]["ticket"]["number"] for a in answers} == {answers[0][1]["ticket"]["number"]}
        assert [a[0] for a in answers[1:]] == [200, 200]
        # concurrent replays too, with the key in the body
        results = await asyncio.gather(
            *[client.post("/forms/support", json={**GOOD, "idempotency_key": "body-key"}) for _ in range(3)]
        )
        numbers = {(await r.json())["ticket"]["number"] for r in results}
        assert len(numbers) == 1
        assert await mongo.tickets.count_documents({}) == 2
        assert await mongo.inbox.count_documents({}) == 2


async def test_200_concurrent_submissions_make_200_distinct_tickets(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:

        async def submit(i: int) -> tuple[int, Any]:
            res = await client.post("/forms/support", json={**GOOD, "subject": f"problem {i}"})
            return res.status, await res.json()

        results = await asyncio.gather(*[submit(i) for i in range(200)])
        assert all(status in (201, 202) for status, _ in results), [r for r in results if r[0] >= 300][:3]

        async def count() -> bool:
            return await mongo.tickets.count_documents({}) == 200

        await eventually(count, timeout=60)
        numbers = await mongo.tickets.distinct("number")
        assert len(numbers) == 200
        subjects = await mongo.tickets.distinct("subject")
        assert len(subjects) == 200


async def test_malformed_input_gets_clear_4xx_json(make_settings: Any, mongo: Any) -> None:
    settings = make_settings(storage={"max_attachment_bytes": 10 * 1024 * 1024})
    async with running_app(settings) as client:
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            (
                "bad json",
                {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
                400,
                "invalid_json",
            ),
            (
                "json array",
                {"data": b"[1,2]", "headers": {"Content-Type": "application/json"}},
                400,
                "invalid_json",
            ),
            (
                "invalid utf-8",
                {"data": b'{"subject": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
                400,
                "invalid_encoding",
            ),
            (
                "invalid utf-8 form",
                {
                    "data": b"subject=%FF%FE&description=x&email=a%40b.cn",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                },
                400,
                "invalid_encoding",
            ),
            ("missing fields", {"json": {"email": "a@b.cn"}}, 422, "invalid_fields"),
            ("no contact", {"json": {"subject": "x", "description": "y"}}, 422, "invalid_fields"),
            ("bad email", {"json": {**GOOD, "email": "not-an-email"}}, 422, "invalid_fields"),
            ("nested value", {"json": {**GOOD, "subject": {"$gt": ""}}}, 422, "invalid_fields"),
            (
                "oversized json",
                {
                    "data": b'{"subject": "' + b"x" * 300_000 + b'"}',
                    "headers": {"Content-Type": "application/json"},
                },
                413,
                "body_too_large",
            ),
            (
                "unsupported type",
                {"data": b"<xml/>", "headers": {"Content-Type": "application/xml"}},
                415,
                "unsupported_media_type",
            ),
            (
                "broken multipart",
                {
                    "data": b'--zz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
                    "headers": {"Content-Type": "multipart/form-data; boundary=yy"},
                },
                400,
                "invalid_multipart",
            ),
        ]
        for label, kwargs, status, code in cases:
            res = await client.post("/forms/support", **kwargs)
            body = await res.json()
            assert res.status == status, (label, res.status, body)
            assert body["error"]["code"] == code, (label, body)
            assert body["error"]["message"], label
        missing = await (await client.post("/forms/support", json={"email": "a@b.cn"})).json()
        assert set(missing["error"]["fields"]) == {"subject", "description"}
        # a 20 MB file where the cap is 10 MB
        form = FormData()
        for k, v in GOOD.items():
            form.add_field(k, v)
        form.add_field(
            "attachments",
            b"\x89PNG\r\n\x1a\n" + b"0" * (20 * 1024 * 1024),
            filename="big.png",
            content_type="image/png",
        )
        res = await client.post("/forms/support", data=form, headers={"Accept": "application/json"})
        body = await res.json()
        assert res.status == 413 and body["error"]["code"] == "attachment_too_large", body
        assert (await client.get("/forms/nope")).status == 404
        assert (await client.post("/forms/nope", json=GOOD)).status == 404
        assert await mongo.tickets.count_documents({}) == 0
        assert await mongo.inbox.count_documents({}) == 0


async def test_page_is_served_in_chinese_and_english(settings: Any) -> None:
    async with running_app(settings) as client:
        en = await (await client.get("/forms/support", headers={"Accept-Language": "en-US"})).text()
        zh = await (await client.get("/forms/support", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text()
        assert "Describe the problem" in en and 'lang="en"' in en
        assert "问题描述" in zh and 'lang="zh-CN"' in zh
        assert 'for="f-subject"' in en and 'aria-required="true"' in en


async def test_plain_html_post_without_javascript_shows_the_number(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        res = await client.post("/forms/support", data=GOOD, headers={"Accept": "text/html"})
        html = await res.text()
        assert res.status == 201
        ticket = await mongo.tickets.find_one({})
        assert ticket["number"] in html
        res = await client.post("/forms/support", data={"email": "x@y.cn"}, headers={"Accept": "text/html"})
        assert res.status == 422
        assert 'aria-invalid="true"' in await res.text()


async def test_confirmation_email_reaches_the_customer(make_settings: Any, mongo: Any) -> None:
    async with smtp_server() as (port, smtp):
        mailbox = EmailMailbox(
            name="support",
            address="support@example.com",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
        )
        settings = make_settings(email_mailboxes=(mailbox,))
        async with running_app(settings) as client:
            res = await client.post("/forms/support", json={**GOOD, "locale": "zh-CN", "name": "李雷"})
            number = (await res.json())["ticket"]["number"]
            await eventually(lambda: asyncio.sleep(0, result=smtp.messages), timeout=10)
            mail = smtp.messages[0]
            assert mail["To"] == "li@example.com"
            assert number in mail["Subject"]
            assert mail["Auto-Submitted"] in ("auto-replied", "auto-generated")  # never answered by robots
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None and "工单号" in body.get_content()
            # visible through the API as a sent delivery
            headers = await token(client)

            async def sent() -> dict[str, Any] | None:
                # The SMTP server has the mail before the outbox records the result: wait for it.
                res = await client.get(f"/api/v1/tickets/{number}/deliveries", headers=headers)
                found: dict[str, Any] = await res.json()
                return found if [d["state"] for d in found["items"]] == ["sent"] else None

            deliveries = await eventually(sent)
            assert json.dumps(deliveries)  # serialisable
