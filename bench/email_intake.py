"""Email intake benchmark: messages per second from IMAP to `inbox`, and the parse cost per message.

1,000 mails of mixed size (plain text, HTML, Chinese in GB18030, small and 200 KB attachments) are
APPENDed to a throwaway dovecot (as root, DESIGN.md section 5), then a gateway with the embedded
database reads them; the clock runs from start-up until the last inbox record is durable. Dispatch to
the dialog is off so the figure is pure intake (IMAP fetch, raw storage, parse, attachments, bus).
Prints the figures and writes bench/results/email_intake.json. Under 3 minutes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from _common import machine, write_results

from channels.email.mime_parse import parse_email
from gateway.app import create_app
from gateway.appkeys import DATABASE
from gateway.config import BusSettings, MongoSettings, Settings, StorageSettings
from tests.imap_server import DovecotServer, append, available, mailbox

TOTAL = int(os.environ.get("BENCH_EMAILS", "1000"))


def make_mail(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"customer{i % 97}@example.net"
    msg["To"] = "support@example.com"
    msg["Message-ID"] = f"<bench-{i}-{time.time_ns()}@example.net>"
    kind = i % 10
    if kind < 5:  # short plain text
        msg["Subject"] = f"Order {i} has not arrived"
        msg.set_content(f"Hello, my order {i} is late.\n\nOn Mon, Support wrote:\n> earlier text\n" * 3)
    elif kind < 7:  # Chinese in GB18030 with quoted history
        msg["Subject"] = f"打印机卡纸 {i}"
        msg.set_content(
            "每一页都卡纸，怎么办？\n\n------------------ 原始邮件 ------------------\n旧内容\n" * 5,
            charset="gb18030",
        )
    elif kind < 9:  # HTML with a small attachment
        msg["Subject"] = f"Screenshot {i}"
        msg.set_content("see attached")
        msg.add_alternative("<p>see <b>attached</b></p>" * 20, subtype="html")
        msg.add_attachment(
            b"\x89PNG\r\n\x1a\n" + os.urandom(20_000), maintype="image", subtype="png", filename="s.png"
        )
    else:  # a big one
        msg["Subject"] = f"Logs {i}"
        msg.set_content("logs attached")
        msg.add_attachment(
            os.urandom(200_000), maintype="application", subtype="octet-stream", filename="log.bin"
        )
    return msg.as_bytes()


async def run() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="omnigate-bench-dovecot-"))
    server = DovecotServer(folder)
    server.start()
    try:
        address = server.add_user()
        mails = [make_mail(i) for i in range(TOTAL)]
        sizes = [len(m) for m in mails]
        started = time.perf_counter()
        await append(server, address, mails)
        append_seconds = time.perf_counter() - started

        parse_times = []
        for raw in mails[:300]:
            t0 = time.perf_counter()
            parse_email(raw)
            parse_times.append(time.perf_counter() - t0)

        storage = Path(tempfile.mkdtemp(prefix="omnigate-bench-var-"))
        settings = Settings(
            storage=StorageSettings(path=str(storage)),
            mongodb=MongoSettings(database="bench_email"),
            bus=BusSettings(dispatch=False),
            email_mailboxes=(mailbox(server, address, fetch_batch=100, idle_seconds=60),),
            seed_demo=False,
        )
        app = create_app(settings)
        started = time.perf_counter()
        ctx = app.cleanup_ctx[0](app)
        await ctx.__anext__()
        database = app[DATABASE].db
        while await database.inbox.count_documents({}) < TOTAL:
            await asyncio.sleep(0.05)
        intake_seconds = time.perf_counter() - started
        records = await database.inbox.count_documents({})
        raws = await database.raw_mail.count_documents({})
        try:
            await ctx.__anext__()
        except StopAsyncIteration:
            pass
    finally:
        server.stop()
    return {
        "mails": TOTAL,
        "bytes_total": sum(sizes),
        "size_median_bytes": statistics.median(sizes),
        "size_max_bytes": max(sizes),
        "append_seconds": round(append_seconds, 2),
        "intake_seconds_incl_startup": round(intake_seconds, 2),
        "intake_messages_per_second": round(records / intake_seconds, 1),
        "inbox_records": records,
        "raw_mails_stored": raws,
        "parse_ms_mean": round(1000 * statistics.mean(parse_times), 3),
        "parse_ms_p95": round(1000 * sorted(parse_times)[int(0.95 * len(parse_times))], 3),
        "parse_ms_by_kind": {
            name: round(1000 * statistics.mean(parse_times[i] for i in range(len(parse_times)) if pick(i)), 3)
            for name, pick in {
                "plain": lambda i: i % 10 < 5,
                "gb18030": lambda i: 5 <= i % 10 < 7,
                "html+20KB png": lambda i: 7 <= i % 10 < 9,
                "200KB attachment": lambda i: i % 10 == 9,
            }.items()
        },
        "machine": machine(),
    }


def main() -> None:
    if not available():
        sys.exit("bench/email_intake.py needs dovecot and root (apt-get install dovecot-imapd)")
    result = asyncio.run(run())
    for key, value in result.items():
        if key != "machine":
            print(f"{key:32} {value}")
    print(f"written to {write_results('email_intake', result)}")


if __name__ == "__main__":
    main()
