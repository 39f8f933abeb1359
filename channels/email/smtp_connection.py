"""One reused SMTP connection per mailbox (aiosmtplib), closed after `smtp_idle_seconds` unused.

Sends on one connection are serialised (SMTP is one transaction at a time). A reused connection the
server has dropped meanwhile is reopened once, before any data went out. Every aiosmtplib error is
translated in `translate_smtp_error`: 5xx is permanent (the outbox ends the record dead with the
server's answer), 4xx and connection trouble are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib

from channels.settings import EmailMailbox
from ticket_core.errors import ChannelError, ChannelUnavailable, PermanentDeliveryError
from ticket_core.lifecycle import stop_task


def translate_smtp_error(exc: BaseException) -> ChannelError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        text = "; ".join(f"{r.recipient}: SMTP {r.code} {r.message}" for r in refusals) or str(exc)
        codes = [r.code for r in refusals]
        if codes and all(500 <= c < 600 for c in codes):
            return PermanentDeliveryError(f"recipient refused: {text}", platform_code=codes[0])
        return ChannelUnavailable(f"recipient deferred: {text}", platform_code=codes[0] if codes else None)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"SMTP {exc.code}: {exc.message}"
        if 500 <= exc.code < 600:
            return PermanentDeliveryError(text, platform_code=exc.code)
        return ChannelUnavailable(text, platform_code=exc.code)
    return ChannelUnavailable(f"SMTP server unreachable: {type(exc).__name__}: {exc}")


class SmtpConnection:
    def __init__(self, box: EmailMailbox, *, timeout: float) -> None:
        self._box = box
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._smtp: aiosmtplib.SMTP | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._last_used = 0.0
        self.connects = 0  # how many connections were opened (tests check reuse)

    async def _open(self) -> aiosmtplib.SMTP:
        box = self._box
        security = box.smtp_security
        context = ssl.create_default_context() if security in ("tls", "starttls") else None
        smtp = aiosmtplib.SMTP(
            hostname=box.smtp_host,
            port=box.smtp_port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            tls_context=context,
            timeout=self._timeout,
        )
        await smtp.connect()
        self.connects += 1
        username = box.username or box.address
        # Log in where the server offers it (a relay on loopback may not); never in clear text
        # unless the operator chose `smtp_security = "none"`.
        if box.password.get() and smtp.supports_extension("auth"):
            await smtp.login(username, box.password.get())
        return smtp

    async def send(self, mail: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        async with self._lock:
            for attempt in (1, 2):
                reused = self._smtp is not None and self._smtp.is_connected
                try:
                    if not reused:
                        await self._close_now()
                        self._smtp = await self._open()
                    assert self._smtp is not None
                    _, response = await self._smtp.send_message(
                        mail, sender=sender, recipients=list(recipients), timeout=self._timeout
                    )
                except aiosmtplib.SMTPServerDisconnected as exc:
                    await self._close_now()
                    if reused and attempt == 1:
                        continue  # the server had closed an idle connection: open a fresh one
                    raise translate_smtp_error(exc) from exc
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    await self._close_now()
                    raise translate_smtp_error(exc) from exc
                self._touch()
                return response
        raise ChannelUnavailable("SMTP: no connection")  # unreachable: the loop returns or raises

    def _touch(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_used = loop.time()
        if self._reaper is None or self._reaper.done():
            self._reaper = loop.create_task(self._reap(), name=f"smtp-idle-{self._box.name}")

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        idle = max(self._box.smtp_idle_seconds, 0.1)
        while True:
            await asyncio.sleep(max(0.05, self._last_used + idle - loop.time()))
            if loop.time() - self._last_used >= idle and not self._lock.locked():
                async with self._lock:
                    await self._close_now()
                return

    async def _close_now(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        with contextlib.suppress(Exception):
            if smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), 2)
        with contextlib.suppress(Exception):
            smtp.close()

    async def close(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is not None and reaper is not asyncio.current_task():
            await stop_task(reaper)
        await self._close_now()

    @property
    def is_open(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected
