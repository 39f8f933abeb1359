"""The Telegram channel of one configured bot: webhook intake, polling intake, media, and sending.

Intake (webhook or getUpdates) stores every update before it is acknowledged: a useful one through the
bus (`Intake.publish`, unique `dedup_key` per bot and `update_id`), one of no use as an `inbox` record
in state `ignored` with its reason, so a repeat of either is recognised. Files are fetched later by
`with_attachments`, on the handler's path, so the webhook answers at once.

Sending respects the Bot API's limits through `SendRateLimiter`. A send that would have to wait long
for its chat is handed back to the outbox (`RateLimited`) instead of holding a delivery slot, and a
429 from Telegram penalises the chat in the limiter before the outbox reschedules the record.

We parse updates with `updates.classify_update` and send with our own `TelegramBotApi` rather than
python-telegram-bot's `Application`: see docs/telegram.md for why.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import mimetypes
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

from channels.base import AttachmentStore, Intake, SendResult
from channels.settings import TelegramBot
from channels.telegram.bot_api import MAX_DOWNLOAD_BYTES, TelegramBotApi, keyboard_from_pairs
from channels.telegram.inbound import dedup_key, to_inbound
from channels.telegram.lease import LeaderLease
from channels.telegram.limits import SendRateLimiter, split_text
from channels.telegram.polling import TelegramPoller
from channels.telegram.updates import TelegramUpdate, classify_update
from ticket_core.errors import (
    ChannelError,
    InvalidInput,
    PermanentDeliveryError,
    RateLimited,
    StorageUnavailable,
)
from ticket_core.lifecycle import TaskGroup
from ticket_core.messages import InboundMessage, OutboundMessage
from ticket_core.repository import Db

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Beyond this wait for a chat, a send goes back to the outbox rather than hold a delivery slot.
DEFER_AFTER_SECONDS = 2.0
RAW_LIMIT = 64 * 1024  # characters of an ignored update kept for the record
_PROGRESS_ENTRIES = 1000


@dataclass(frozen=True)
class Outcome:
    """What intake did with one update."""

    record_id: str
    duplicate: bool = False
    ignored: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": True, "record": self.record_id, "duplicate": self.duplicate}
        if self.ignored is not None:
            body["ignored"] = self.ignored
        return body


class TelegramChannel:
    name = "telegram"

    def __init__(
        self,
        bot: TelegramBot,
        intake: Intake,
        attachments: AttachmentStore,
        db: Db,
        *,
        public_url: str = "",
        max_attachment_bytes: int = MAX_DOWNLOAD_BYTES,
        api: TelegramBotApi | None = None,
        limiter: SendRateLimiter | None = None,
    ) -> None:
        self.bot = bot
        self.account = bot.name
        self._intake = intake
        self._attachments = attachments
        self._db = db
        self._public_url = public_url.rstrip("/")
        self._max_bytes = min(max_attachment_bytes, MAX_DOWNLOAD_BYTES)
        self.api = api or TelegramBotApi(bot.token.get() or "unset", base_url=bot.base_url)
        self.limiter = limiter or SendRateLimiter()
        self.username: str | None = None
        self.poller: TelegramPoller | None = None
        if self.mode == "polling":
            lease = LeaderLease(db, f"telegram-poll:{bot.name}", seconds=bot.poll_lease_seconds)
            self.poller = TelegramPoller(
                bot.name, self.api, lease, db, self.accept_update, poll_timeout=bot.poll_timeout
            )
        self._tasks = TaskGroup(f"telegram-{bot.name}")
        self._waiting: dict[int | str, int] = {}
        self._backlog: dict[int | str, int] = {}
        self._progress: OrderedDict[str, list[int]] = OrderedDict()
        self.stats = {
            "updates": 0,
            "ignored": 0,
            "duplicates": 0,
            "sent": 0,
            "deferred": 0,
            "rate_limited": 0,
        }

    @property
    def mode(self) -> str:
        return "polling" if self.bot.mode == "polling" else "webhook"

    @property
    def webhook_path(self) -> str:
        return f"/channels/telegram/{self.account}"

    # -- lifecycle -------------------------------------------------------------------------------------

    async def initialize(self) -> None:
        await self.api.initialize()
        # Learning our username (for "/cmd@bot" in groups) and registering the webhook must not hold up
        # start-up while Telegram is slow or unreachable.
        self._spawn(self._introduce())

    async def shutdown(self) -> None:
        await self._tasks.cancel_all()
        await self.api.shutdown()

    async def _introduce(self) -> None:
        try:
            self.username = (await self.api.get_me()).username or None
            if self.mode == "webhook" and self._public_url.startswith("https://"):
                await self.api.set_webhook(
                    f"{self._public_url}{self.webhook_path}",
                    secret_token=self.bot.secret_token.get() or None,
                    allowed_updates=("message", "edited_message", "callback_query"),
                )
        except ChannelError as exc:
            log.warning("telegram/%s: start-up call failed: %s", self.account, exc)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coro)

    # -- intake ----------------------------------------------------------------------------------------

    def register(self, app: web.Application) -> None:
        app.router.add_post(self.webhook_path, self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        # The secret comes first: nothing from an unauthenticated caller is read or stored.
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            raise InvalidInput(f"missing {SECRET_HEADER}", code="unauthorized")
        expected = self.bot.secret_token.get()
        if not expected or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            raise InvalidInput(f"wrong {SECRET_HEADER}", code="forbidden")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("the update is not valid JSON", code="invalid_json") from exc
        outcome = await self.accept_update(data)
        return web.json_response(outcome.to_json())

    async def accept_update(self, data: Any) -> Outcome:
        """Store one raw update (webhook or getUpdates). Raises InvalidInput, StorageUnavailable."""
        update = classify_update(data, bot=self.account, bot_username=self.username)
        self.stats["updates"] += 1
        result = to_inbound(update, bot=self.account, staff_chat_id=self.bot.staff_chat_id)
        if isinstance(result, str):
            outcome = await self._record_ignored(update, result, data)
        else:
            accepted = await self._intake.publish(result)
            outcome = Outcome(accepted.record_id, accepted.duplicate)
        if outcome.duplicate:
            self.stats["duplicates"] += 1
        if update.callback_query_id is not None:
            # The button shows a spinner until answered; answer even a repeat (the first answer may
            # have been lost), and never make the platform wait for it.
            self._spawn(self._answer_callback(update.callback_query_id))
        return outcome

    async def _record_ignored(self, update: TelegramUpdate, reason: str, data: Any) -> Outcome:
        self.stats["ignored"] += 1
        doc = {
            "_id": ObjectId(),
            "dedup_key": dedup_key(self.account, update),
            "channel": self.name,
            "account": self.account,
            "state": "ignored",
            "ignore_reason": reason,
            "update_kind": update.kind,
            "raw": json.dumps(data, ensure_ascii=False)[:RAW_LIMIT],
            "received_at": datetime.now(UTC),
        }
        try:
            await self._db.inbox.insert_one(doc)
        except DuplicateKeyError:
            existing = await self._db.inbox.find_one({"dedup_key": doc["dedup_key"]}, {"_id": 1})
            return Outcome(str(existing["_id"]) if existing else "", duplicate=True, ignored=reason)
        except PyMongoError as exc:
            raise StorageUnavailable(f"could not record the update: {exc}") from exc
        return Outcome(str(doc["_id"]), ignored=reason)

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.api.answer_callback_query(query_id)
        except ChannelError as exc:
            log.info("telegram/%s: answerCallbackQuery failed: %s", self.account, exc)

    # -- media -----------------------------------------------------------------------------------------

    async def with_attachments(self, msg: InboundMessage) -> InboundMessage:
        """Fetch the message's file into the attachment store (on the handler's path, after the ack).

        A file over the size limit is not an error the customer can fix by retrying: the message goes
        on without it and says so. Transport failures raise, so the bus retries the handler.
        """
        info = msg.meta.get("telegram_file")
        if not isinstance(info, Mapping) or msg.attachments:
            return msg
        size = info.get("file_size")
        try:
            if isinstance(size, int) and size > self._max_bytes:
                raise PermanentDeliveryError(f"the file is larger than {self._max_bytes} bytes")
            file_info, data = await self.api.download(str(info["file_id"]), max_bytes=self._max_bytes)
        except PermanentDeliveryError as exc:
            note = f"[{info.get('kind', 'file')} not attached: {exc}]"
            meta = {**msg.meta, "attachment_error": str(exc)}
            return replace(msg, text=f"{msg.text}\n{note}".strip(), meta=meta)
        filename, content_type = _file_naming(info, file_info.file_path)
        ref = await self._attachments.save(
            data,
            filename=filename,
            content_type=content_type,
            meta={"channel": self.name, "account": self.account, "dedup_key": msg.dedup_key},
        )
        return replace(msg, attachments=(ref,))

    # -- sending ---------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        chat = _chat_id(message.recipient)
        chunks = split_text(message.text)
        if not chunks:
            raise PermanentDeliveryError("Telegram cannot send an empty message")
        thread = _opt_int(message.meta.get("message_thread_id"))
        reply_to = _opt_int(message.meta.get("reply_to_message_id"))
        keyboard = _keyboard(message.buttons) if message.buttons else None
        # A retry after a failure half-way through a long text resumes after the parts already sent.
        progress_key = _fingerprint(message)
        sent_ids = self._progress.get(progress_key, [])
        for index, chunk in enumerate(chunks):
            if index < len(sent_ids):
                continue
            await self._pace(chat)
            try:
                sent = await self.api.send_message(
                    chat,
                    chunk,
                    buttons=keyboard if index == len(chunks) - 1 else None,
                    message_thread_id=thread,
                    reply_to_message_id=reply_to if index == 0 else None,
                )
            except RateLimited as exc:
                self.stats["rate_limited"] += 1
                self.limiter.penalise(chat, exc.retry_after)
                raise
            except InvalidInput as exc:  # a message we built wrongly will not improve with retries
                raise PermanentDeliveryError(str(exc)) from exc
            sent_ids = [*sent_ids, sent.message_id]
            self._remember(progress_key, sent_ids)
        self._progress.pop(progress_key, None)
        self.stats["sent"] += 1
        return SendResult(
            platform_id=str(sent_ids[-1]),
            detail={"chat_id": chat, "message_ids": sent_ids, "message_thread_id": thread},
        )

    async def _pace(self, chat: int | str) -> None:
        interval = self._interval(chat)
        queued = self._waiting.get(chat, 0) + self._backlog.get(chat, 0)
        estimate = self.limiter.delay_for(chat) + queued * interval
        if estimate > DEFER_AFTER_SECONDS:
            # Reserve a place in the chat's queue for the deferred send, so records deferred together
            # come back one interval apart instead of all at once.
            self._backlog[chat] = self._backlog.get(chat, 0) + 1
            asyncio.get_running_loop().call_later(estimate, self._unreserve, chat)
            self.stats["deferred"] += 1
            raise RateLimited(f"paced: chat {chat} is busy for {estimate:.1f} s", retry_after=estimate)
        self._waiting[chat] = self._waiting.get(chat, 0) + 1
        try:
            await self.limiter.acquire(chat)
        finally:
            self._waiting[chat] -= 1
            if not self._waiting[chat]:
                del self._waiting[chat]

    def _unreserve(self, chat: int | str) -> None:
        left = self._backlog.get(chat, 0) - 1
        if left > 0:
            self._backlog[chat] = left
        else:
            self._backlog.pop(chat, None)

    def _interval(self, chat: int | str) -> float:
        limits = self.limiter.limits
        group = isinstance(chat, str) or chat < 0
        if group:
            return max(limits.chat_interval, limits.group_window / limits.group_per_window)
        return limits.chat_interval

    def _remember(self, key: str, sent_ids: list[int]) -> None:
        self._progress[key] = sent_ids
        self._progress.move_to_end(key)
        while len(self._progress) > _PROGRESS_ENTRIES:
            self._progress.popitem(last=False)


def _chat_id(recipient: str) -> int | str:
    try:
        return int(recipient)
    except ValueError:
        if recipient.startswith("@"):
            return recipient
        raise PermanentDeliveryError(f"not a Telegram chat id: {recipient!r}") from None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _keyboard(buttons: tuple[tuple[str, str], ...]) -> list[list[Any]]:
    # Short labels (ratings, numbers) sit side by side; sentences (article titles) get a row each.
    short = all(len(label) <= 6 for label, _ in buttons)
    try:
        return keyboard_from_pairs(buttons, per_row=5 if short else 1)
    except InvalidInput as exc:
        raise PermanentDeliveryError(str(exc)) from exc


def _fingerprint(message: OutboundMessage) -> str:
    raw = json.dumps([message.recipient, message.text, dict(message.meta)], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _file_naming(info: Mapping[str, Any], file_path: str | None) -> tuple[str, str]:
    kind = str(info.get("kind") or "file")
    name = info.get("file_name")
    suffix = ""
    if file_path and "." in file_path.rsplit("/", 1)[-1]:
        suffix = "." + file_path.rsplit(".", 1)[-1]
    if not isinstance(name, str) or not name:
        name = f"{kind}_{info.get('file_unique_id') or 'file'}{suffix or ('.jpg' if kind == 'photo' else '')}"
    mime = info.get("mime_type")
    if not isinstance(mime, str) or not mime:
        mime = mimetypes.guess_type(name)[0] or (
            "image/jpeg" if kind == "photo" else "application/octet-stream"
        )
    return name, mime
