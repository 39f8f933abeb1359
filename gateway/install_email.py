"""Email installer: IMAP intake per mailbox, the sender's threading and loop protection, bounces.

`create_app` registers an `EmailChannel` (the SMTP sender) per configured mailbox; this binds it to the
database, starts one `ImapIntake` per mailbox that has an IMAP host, and routes `mail_event` messages
(bounces, our own mail coming back) away from the dialog.
"""

from __future__ import annotations

import functools

from channels.email.auto_guard import AutomaticMailGuard
from channels.email.imap_intake import ImapIntake
from channels.email.mail_events import MailEventHandler
from channels.email.reply_token import ReplyTokens, load_or_create_secret
from channels.email.sender import EmailChannel
from channels.email.threader import ReplyThreader
from gateway.lifecycle import Component
from gateway.quarantine import quarantine
from gateway.wiring import Wiring


class _IntakeLifecycle(Component):
    def __init__(self, intake: ImapIntake) -> None:
        self.intake = intake

    async def initialize(self) -> None:
        await self.intake.initialize()

    async def shutdown(self) -> None:
        await self.intake.shutdown()


def install(wiring: Wiring) -> None:
    boxes = wiring.settings.email_mailboxes
    if not boxes:
        return
    db = wiring.db
    own = frozenset(box.address.lower() for box in boxes if box.address)
    configured = next((box.reply_token_secret.get() for box in boxes if box.reply_token_secret), "")
    tokens = ReplyTokens(configured.encode("utf-8") if configured else None)

    async def load_secret() -> None:
        if tokens.secret is None:
            tokens.secret = await load_or_create_secret(db)

    wiring.on_ready.append(load_secret)
    threader = ReplyThreader(db, tokens, wiring.tickets)
    wiring.router.add("mail_event", MailEventHandler(db))
    for box in boxes:
        channel = wiring.registry.get("email", box.name)
        if isinstance(channel, EmailChannel):
            channel.bind(db=db, tokens=tokens, guard=AutomaticMailGuard(db, box, own))
        if not box.imap_host:
            continue
        intake = ImapIntake(
            box,
            db=db,
            bus=wiring.bus,
            attachments=wiring.attachments,
            threader=threader,
            quarantine=functools.partial(quarantine, db),
            own_addresses=own,
            max_attachment_bytes=wiring.settings.storage.max_attachment_bytes,
        )
        wiring.components.append(_IntakeLifecycle(intake))
