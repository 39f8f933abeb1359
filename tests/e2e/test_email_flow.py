"""Email end to end on loopback: dovecot for IMAP, an aiosmtpd relay that delivers into dovecot, the
gateway with the embedded database. A customer's reply lands on its ticket by each threading route, a
forged token does not, and auto-responders cannot start a mail loop with us."""

from __future__ import annotations

import asyncio
import dataclasses
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import aiosmtplib

from gateway.config import Settings
from tests.helpers import eventually, running_app
from tests.imap_server import DovecotServer, append, dovecot, imap_client, mail, mail_relay, mailbox

__all__ = ["dovecot"]
CUSTOMER = "li.wei@example.net"


def _settings(make_settings: Any, box: Any, database: str | None = None) -> Settings:
    settings: Settings = make_settings(email_mailboxes=(box,), seed_demo=False)
    if database:
        settings = dataclasses.replace(
            settings, mongodb=dataclasses.replace(settings.mongodb, database=database)
        )
    return settings


def _sent_to(relay: Any, address: str) -> list[EmailMessage]:
    return [m for m in relay.messages if parseaddr(str(m["To"]))[1].lower() == address]


async def _comments(mongo: Any, number: str) -> list[dict[str, Any]]:
    ticket = await mongo.tickets.find_one({"number": number})
    return await mongo.ticket_events.find(
        {"ticket_id": str(ticket["_id"]), "type": "customer_comment"}
    ).to_list()


async def test_replies_land_on_their_ticket_by_token_references_and_subject(
    dovecot: DovecotServer, make_settings: Any, mongo: Any
) -> None:
    address = dovecot.add_user()
    async with mail_relay(dovecot) as (port, relay):
        box = mailbox(dovecot, address, smtp_port=port)
        async with running_app(_settings(make_settings, box)):
            await append(
                dovecot, address, [mail("打印机卡纸", "每一页都卡纸，怎么办？", sender=CUSTOMER, to=address)]
            )
            ticket = await eventually(lambda: mongo.tickets.find_one({"channel": "email"}), timeout=30)
            number = ticket["number"]
            assert ticket["reply_to"] == CUSTOMER
            [notice] = await eventually(lambda: _async(_sent_to(relay, CUSTOMER)), timeout=30)
            assert notice["Auto-Submitted"] == "auto-replied"
            assert number in str(notice["Subject"])
            reply_to = parseaddr(str(notice["Reply-To"]))[1]
            token_local = reply_to.split("@")[0]
            assert token_local.startswith(address.split("@")[0] + "+")
            assert notice["In-Reply-To"]  # threads under the customer's own mail

            colleague = "colleague@example.net"  # another sender: only the route can find the ticket
            by_token = mail("a new subject", "Token route works.", sender=colleague, to=reply_to)
            by_refs = mail(
                "unrelated words",
                "References route works.\n\nOn Mon, Support wrote:\n> old text",
                sender=colleague,
                to=address,
                headers={"In-Reply-To": str(notice["Message-ID"]), "References": str(notice["Message-ID"])},
            )
            by_subject = mail(
                f"Re: [{number}] 打印机卡纸", "Subject route works.", sender=CUSTOMER, to=address
            )
            forged_to = (
                f"{address.split('@')[0]}+{token_local.split('+')[1][:-4]}abcd@{address.split('@')[1]}"
            )
            forged = mail("hijack", "Forged token.", sender="mallory@evil.test", to=forged_to)
            await append(dovecot, address, [by_token, by_refs, by_subject, forged])

            async def routed() -> list[Any]:
                docs = await mongo.inbox.find({"state": "done"}).to_list()
                return docs if len(docs) == 5 else []

            docs = await eventually(routed, timeout=30)
            routes = {d["message"]["subject"]: d["message"]["meta"].get("thread_route") for d in docs}
            assert routes["a new subject"] == "token"
            assert routes["unrelated words"] == "references"
            assert routes[f"Re: [{number}] 打印机卡纸"] == "subject"
            assert routes["hijack"] is None
            comments = await eventually(lambda: _at_least(_comments(mongo, number), 3), timeout=15)
            texts = sorted(c["data"]["text"] for c in comments)
            assert texts == ["References route works.", "Subject route works.", "Token route works."]
            # The forged token made its own ticket, not a comment on the customer's.
            mallory = await mongo.tickets.find_one({"reply_to": "mallory@evil.test"})
            assert mallory is not None and mallory["number"] != number


async def _async(value: Any) -> Any:
    return value


async def _at_least(coro: Any, n: int) -> Any:
    items = await coro
    return items if len(items) >= n else None


async def test_auto_responders_cannot_loop_with_two_gateways(
    dovecot: DovecotServer, make_settings: Any, mongo: Any, db_name: str
) -> None:
    """Gateway A and gateway B (each the other's out-of-office robot: every new mail gets a ticket
    confirmation), plus a naive auto-responder that answers everything without any loop headers."""
    a_addr = dovecot.add_user("support", "a.test")
    b_addr = dovecot.add_user("help", "b.test")
    bot_addr = dovecot.add_user("ooo", "c.test")
    async with mail_relay(dovecot) as (port, relay):
        a = mailbox(dovecot, a_addr, name="a", smtp_port=port)
        b = mailbox(dovecot, b_addr, name="b", smtp_port=port)
        stop = asyncio.Event()
        bot = asyncio.create_task(_naive_autoresponder(dovecot, bot_addr, port, stop))
        try:
            async with (
                running_app(_settings(make_settings, a)),
                running_app(_settings(make_settings, b, database=f"{db_name}_b")),
            ):
                # Someone at B's address writes to A (or B forwards a mail): A confirms it to B, and
                # B's own confirmation must not answer A's automatic mail.
                await append(
                    dovecot, a_addr, [mail("hello from b", "a plain mail", sender=b_addr, to=a_addr)]
                )
                # The naive robot writes to A, gets A's confirmation, and answers it blindly.
                await append(dovecot, a_addr, [mail("hi from c", "plain", sender=bot_addr, to=a_addr)])
                await eventually(lambda: _async(len(_sent_to(relay, bot_addr)) >= 1), timeout=30)
                await eventually(lambda: _async(len(_sent_to(relay, a_addr)) >= 1), timeout=30)
                await asyncio.sleep(8)  # room for a loop to show itself
        finally:
            stop.set()
            await bot
    from_a = [m for m in relay.messages if parseaddr(str(m["From"]))[1] == a_addr]
    from_b = [m for m in relay.messages if parseaddr(str(m["From"]))[1] == b_addr]
    from_bot = [m for m in relay.messages if parseaddr(str(m["From"]))[1] == bot_addr]
    assert len([m for m in from_a if m["To"] == b_addr]) == 1  # A confirmed B's mail once
    assert len([m for m in from_a if m["To"] == bot_addr]) == 1  # and the robot's once
    assert from_b == []  # B never answers A's automatic mail
    assert len(from_bot) == 1  # the robot answered A's single confirmation, once
    dead = await mongo.outbox.find({"state": "dead"}).to_list()
    assert all("suppressed" in d["last_error"] for d in dead)
    # B did read A's confirmation, made a ticket of it, and refused to confirm it back.
    b_db = mongo.client[f"{db_name}_b"]
    try:
        [b_inbound] = await b_db.inbox.find({}).to_list()
        assert b_inbound["message"]["meta"]["automatic"] is True
        [b_dead] = await b_db.outbox.find({}).to_list()
        assert b_dead["state"] == "dead"
        assert "suppressed: the recipient's last mail was automatic" in b_dead["last_error"]
    finally:
        await mongo.client.drop_database(f"{db_name}_b")


async def _naive_autoresponder(
    server: DovecotServer, address: str, smtp_port: int, stop: asyncio.Event
) -> None:
    """Answers every new mail in its inbox with a fresh subject and no loop headers at all."""
    seen: set[int] = set()
    while not stop.is_set():
        async with imap_client(server, address) as client:
            await client.select("INBOX")
            response = await client.uid("fetch", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (FROM)])")
        current: int | None = None
        for line in response.lines:
            if isinstance(line, bytes) and b"UID " in line:
                current = int(line.split(b"UID ")[1].split()[0])
            elif isinstance(line, bytearray) and current is not None and current not in seen:
                seen.add(current)
                sender = parseaddr(bytes(line).decode().partition(":")[2].strip())[1]
                answer = EmailMessage()
                answer["From"], answer["To"], answer["Subject"] = address, sender, "I am out of the office"
                answer.set_content("I am away until Monday.")
                await aiosmtplib.send(answer, hostname="127.0.0.1", port=smtp_port)
        await asyncio.sleep(0.3)
