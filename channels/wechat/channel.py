"""The WeChat Official Account channel: the callback endpoint and the sender, for one account.

A POST callback is authenticated (signature, timestamp window, nonce), opened (safe/compatible mode),
parsed, published durably to the bus, and only then answered. WeChat retries after 5 s, so the answer
waits for the dialog at most `reply_budget_seconds`: a reply the dialog queued in the outbox is taken
with `claim_for_reply` and returned as the passive reply (encrypted in safe mode); otherwise the
endpoint answers `success` and the outbox delivers the reply through the customer-service API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Coroutine
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from pymongo.errors import PyMongoError

from channels.base import AttachmentStore, Intake, SendResult
from channels.settings import WeChatAccount
from channels.wechat.api_client import TokenStore, WeChatApiClient
from channels.wechat.clock import AdjustableClock
from channels.wechat.crypto import Mode, WeChatMessageCrypto, open_callback, open_encrypted_callback
from channels.wechat.errors import DecryptError, NonceReused, ReplayRejected, SignatureInvalid, XmlRejected
from channels.wechat.inbound import MenuMap, to_inbound
from channels.wechat.outbound import NoTemplates, TemplateComposer, WeChatSender
from channels.wechat.replies import encrypted_reply_xml, split_text, text_reply_xml
from channels.wechat.signing import CallbackVerifier, NonceCache
from channels.wechat.stores import CustomerServiceWindow
from channels.wechat.xml_parse import WeChatPayload, parse_callback_xml
from ticket_core.errors import ChannelError, InvalidInput, PermanentDeliveryError, StorageUnavailable
from ticket_core.lifecycle import TaskGroup
from ticket_core.messages import AttachmentRef, OutboundMessage

log = logging.getLogger(__name__)

MODES: tuple[Mode, ...] = ("plaintext", "compatible", "safe")
MEDIA_KINDS = frozenset({"image", "voice"})
#: Media is fetched before publishing only this long, so the 5-second deadline holds; a slower
#: download finishes in the background and is added to the stored record.
MEDIA_BUDGET_SECONDS = 1.0
SUCCESS = "success"  # stops WeChat's retries


class ReplyClaimer(Protocol):
    """The outbox as the callback sees it (gateway.outbox.Outbox)."""

    async def claim_for_reply(self, record_id: str, *, via: str = "passive") -> OutboundMessage | None: ...


class DeliveryLog(Protocol):
    async def record(self, platform_id: str, status: str) -> bool: ...


class InboxAttachments(Protocol):
    """Adds an attachment to an already stored inbox record (media that arrived late)."""

    async def add(self, record_id: str, attachment: AttachmentRef) -> None: ...


class WeChatChannel:
    """Implements Channel and Sender. Everything time-dependent reads `clock` (tests move it)."""

    name = "wechat"

    def __init__(
        self,
        account: WeChatAccount,
        *,
        intake: Intake,
        outbox: ReplyClaimer,
        attachments: AttachmentStore,
        nonce_cache: NonceCache,
        token_store: TokenStore,
        window: CustomerServiceWindow,
        delivery_log: DeliveryLog,
        late_media: InboxAttachments | None = None,
        composer: TemplateComposer | None = None,
        clock: AdjustableClock | None = None,
    ) -> None:
        if account.mode not in MODES:
            raise InvalidInput(f"wechat account {account.name!r}: mode must be one of {', '.join(MODES)}")
        aes_key = account.encoding_aes_key.get()
        if account.mode != "plaintext" and not aes_key:
            raise InvalidInput(f"wechat account {account.name!r}: {account.mode} mode needs encoding_aes_key")
        try:
            self._menu = MenuMap.parse(account.menu)
        except ValueError as exc:
            raise InvalidInput(f"wechat account {account.name!r}: {exc}") from exc
        self.settings = account
        self.account = account.name
        self.clock = clock or AdjustableClock()
        self._intake = intake
        self._outbox = outbox
        self._attachments = attachments
        self._window = window
        self._delivery_log = delivery_log
        self._late_media = late_media
        self._composer = composer or NoTemplates()
        self._token_store = token_store
        self._crypto = WeChatMessageCrypto(aes_key, account.app_id) if aes_key else None
        self._verifier = CallbackVerifier(
            token=account.token.get(), account=account.name, nonce_cache=nonce_cache, now=self._now
        )
        self._session: aiohttp.ClientSession | None = None
        self._api: WeChatApiClient | None = None
        self._sender: WeChatSender | None = None
        self._tasks = TaskGroup(f"wechat-{account.name}")
        # Read by the dialog's replier: replies wait this long in the outbox so the callback that
        # caused them can answer with one as its passive reply before the worker sends it.
        budget = account.reply_budget_seconds
        self.passive_hold_seconds = budget + 1.0 if budget > 0 else 0.0

    def __repr__(self) -> str:
        return f"WeChatChannel(account={self.account!r}, mode={self.settings.mode!r})"

    def _now(self) -> float:
        return self.clock()

    # -- lifecycle -----------------------------------------------------------------------------

    async def initialize(self) -> None:
        self._session = aiohttp.ClientSession()
        self._api = WeChatApiClient(
            api_base_url=self.settings.api_base_url,
            app_id=self.settings.app_id,
            app_secret=self.settings.app_secret,
            session=self._session,
            token_store=self._token_store,
            clock=self._now,
        )
        self._sender = WeChatSender(self._api, self._window, self._composer)

    async def shutdown(self) -> None:
        await self._tasks.cancel_all()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(coro, name=name)

    @property
    def api(self) -> WeChatApiClient:
        if self._api is None:
            raise ChannelError(f"wechat channel {self.account} is not started")
        return self._api

    def register(self, app: web.Application) -> None:
        path = f"/channels/wechat/{self.account}"
        app.router.add_get(path, self.verify_url)
        app.router.add_post(path, self.callback)

    # -- sending -------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        if self._sender is None:
            raise ChannelError(f"wechat channel {self.account} is not started")
        return await self._sender.send(message)

    # -- the callback --------------------------------------------------------------------------

    async def verify_url(self, request: web.Request) -> web.Response:
        try:
            echo = await self._verifier.verify_echo(request.query)
        except (SignatureInvalid, ReplayRejected) as exc:
            return _refuse(403, exc)
        return web.Response(text=echo, content_type="text/plain")

    async def callback(self, request: web.Request) -> web.Response:
        nonce_key: str | None = None  # an encrypted request's nonce, to be kept on its inbox record
        remembered: str | None = None  # a nonce already in the nonce cache (plain signature)
        try:
            body = await self._read_body(request)
            opened = open_encrypted_callback(
                body,
                request.query,
                mode=self._mode(),
                verifier=self._verifier,
                crypto=self._crypto,
                max_bytes=self.settings.max_body_bytes,
            )
            if opened is not None:
                clear, nonce_key = opened
            else:
                clear = await open_callback(
                    body,
                    request.query,
                    mode=self._mode(),
                    verifier=self._verifier,
                    crypto=self._crypto,
                    max_bytes=self.settings.max_body_bytes,
                )
                remembered = self._verifier.nonce_key(request.query)
            payload = parse_callback_xml(clear, max_bytes=self.settings.max_body_bytes)
        except (SignatureInvalid, ReplayRejected) as exc:
            return _refuse(403, exc)
        except XmlRejected as exc:
            return _refuse(413 if exc.fields.get("reason") == "too_large" else 400, exc)
        except (DecryptError, InvalidInput) as exc:
            return _refuse(400, exc)
        except StorageUnavailable as exc:  # the nonce cache could not be written
            return _refuse(503, exc)
        # Compatible mode answers in the form it was asked: WeChat marks encrypted requests.
        encrypted = self.settings.mode == "safe" or (
            self.settings.mode == "compatible" and request.query.get("encrypt_type") == "aes"
        )
        try:
            return await self._accept(payload, request, encrypted=encrypted, nonce_key=nonce_key)
        except ReplayRejected as exc:  # a replay of an encrypted message: stored once already
            return _refuse(403, exc)
        except (StorageUnavailable, PyMongoError) as exc:  # WeChat retries; the dedup key absorbs it
            if remembered is not None:  # or the retry, if it repeats the nonce, would be refused
                await self._verifier.forget(remembered)
            return _refuse(503, exc)

    def _mode(self) -> Mode:
        mode = self.settings.mode
        assert mode in MODES
        return mode

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise XmlRejected(f"body exceeds {limit} bytes", fields={"reason": "too_large"})
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            raise XmlRejected(f"body exceeds {limit} bytes", fields={"reason": "too_large"})
        return body

    async def _accept(
        self, payload: WeChatPayload, request: web.Request, *, encrypted: bool, nonce_key: str | None = None
    ) -> web.Response:
        now = self._now()
        attachments, pending_media = await self._fetch_media(payload)
        msg = to_inbound(
            payload,
            account=self.account,
            menu=self._menu,
            locale=self.settings.locale,
            received_at=now,
            attachments=attachments,
            nonce_key=nonce_key,
        )
        accepted = await self._intake.publish(msg)
        if (
            nonce_key is not None
            and accepted.duplicate
            and accepted.stored_meta.get("nonce_key") == nonce_key
        ):
            # The signature binds the nonce to the ciphertext: the same nonce again is the same request
            # replayed (WeChat's own retries come with a fresh nonce). Stored once; refused now.
            raise NonceReused("nonce already used")
        if pending_media is not None:
            self._spawn(self._late_download(accepted.record_id, payload), "wechat-media")
        if payload.event == "templatesendjobfinish" and payload.msg_id:
            await self._delivery_log.record(payload.msg_id, payload.template_status or "")
        reply = await self._passive_reply(accepted.record_id, payload, request, encrypted=encrypted)
        return web.Response(text=reply or SUCCESS, content_type="application/xml" if reply else "text/plain")

    # -- media ---------------------------------------------------------------------------------

    async def _fetch_media(self, payload: WeChatPayload) -> tuple[tuple[AttachmentRef, ...], str | None]:
        """Attachments fetched within the budget, and the media id still to fetch (or None)."""
        if payload.kind not in MEDIA_KINDS or not payload.media_id or self._api is None:
            return (), None
        try:
            ref = await asyncio.wait_for(self._download(payload), MEDIA_BUDGET_SECONDS)
        except PermanentDeliveryError as exc:  # expired or unknown media id: retrying cannot help
            log.info("wechat %s: media %s cannot be fetched: %s", self.account, payload.media_id, exc)
            return (), None
        except (TimeoutError, ChannelError, OSError) as exc:
            log.info(
                "wechat %s: media %s not fetched in time (%r); continuing", self.account, payload.kind, exc
            )
            return (), payload.media_id
        return (ref,), None

    async def _download(self, payload: WeChatPayload) -> AttachmentRef:
        assert payload.media_id is not None
        media = await self.api.download_media(payload.media_id)
        extension = {"image": "jpg", "voice": payload.format or "amr"}.get(payload.kind, "bin")
        filename = media.filename or f"{payload.kind}-{payload.msg_id or payload.create_time}.{extension}"
        return await self._attachments.save(
            media.data,
            filename=filename,
            content_type=media.content_type,
            meta={"channel": self.name, "account": self.account, "media_id": payload.media_id},
        )

    async def _late_download(self, record_id: str, payload: WeChatPayload) -> None:
        # Temporary media stays downloadable for 3 days; a few tries cover a brief outage.
        for attempt in range(3):
            try:
                ref = await self._download(payload)
            except PermanentDeliveryError:
                return
            except (ChannelError, OSError) as exc:
                log.info("wechat %s: media download attempt %d failed: %r", self.account, attempt + 1, exc)
                await asyncio.sleep(2.0 * (attempt + 1))
                continue
            if self._late_media is not None:
                await self._late_media.add(record_id, ref)
            return

    # -- passive reply ---------------------------------------------------------------------------

    async def _passive_reply(
        self, record_id: str, payload: WeChatPayload, request: web.Request, *, encrypted: bool
    ) -> str | None:
        budget = self.settings.reply_budget_seconds
        if budget <= 0:
            return None
        result = await self._intake.wait_result(record_id, budget)
        outbox_ids = (result or {}).get("outbox_ids") or []
        if not isinstance(outbox_ids, list) or not outbox_ids:
            return None
        reply = await self._outbox.claim_for_reply(str(outbox_ids[0]))
        if reply is None:  # the outbox worker was first: it delivers through the API
            return None
        text, *rest = split_text(reply.text) or [""]
        if rest:
            # A passive reply holds one text; the rest follows through the customer-service API.
            follow_up = dataclasses.replace(reply, text="\n".join(rest), meta={})
            self._spawn(self.send(follow_up), "wechat-reply-rest")
        xml = text_reply_xml(
            to_user=payload.from_user, from_user=payload.to_user, content=text, create_time=int(self._now())
        )
        if not encrypted or self._crypto is None:
            return xml
        return encrypted_reply_xml(
            xml,
            crypto=self._crypto,
            token=self.settings.token.get(),
            timestamp=str(int(self._now())),
            nonce=request.query.get("nonce") or secrets.token_hex(5),
        )


def _refuse(status: int, exc: Exception) -> web.Response:
    code = getattr(exc, "code", "error")
    if status >= 500:
        log.warning("wechat callback: %s", exc)
        return web.json_response(
            {"error": {"code": code, "message": "storage is unavailable; retry shortly"}},
            status=status,
            headers={"Retry-After": "5"},
        )
    return web.json_response({"error": {"code": code, "message": str(exc)}}, status=status)
