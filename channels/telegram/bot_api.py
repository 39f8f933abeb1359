"""A small typed async Bot API client on aiohttp.

We send through our own client rather than python-telegram-bot's `Bot` because delivery state (rate
limits, retries, `retry_after`) must live in the outbox in MongoDB, not in one process's memory; this
client makes exactly one HTTP request per call and turns every failure into a typed `ChannelError`
through `map_api_error`, the one place wire errors are translated.

The token is part of every URL, so URLs are never logged and never put into exception messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp

from channels.telegram.limits import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, utf16_len
from ticket_core.errors import (
    ChannelError,
    ChannelUnavailable,
    InvalidInput,
    PermanentDeliveryError,
    RateLimited,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses bigger files on the public Bot API
TOPIC_NAME_LIMIT = 128
CALLBACK_DATA_LIMIT = 64  # bytes
DEFAULT_RETRY_AFTER = 1.0  # when a 429 comes without parameters.retry_after


class ChatMigrated(PermanentDeliveryError):
    """The group became a supergroup: resend to `new_chat_id` (and store it in place of the old id)."""

    code = "chat_migrated"

    def __init__(self, message: str, *, new_chat_id: int, platform_code: str | int | None = None):
        super().__init__(message, platform_code=platform_code)
        self.new_chat_id = new_chat_id


# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InlineButton:
    text: str
    callback_data: str | None = None
    url: str | None = None

    def to_api(self) -> dict[str, str]:
        if (self.callback_data is None) == (self.url is None):
            raise InvalidInput(
                "an inline button needs exactly one of callback_data and url", code="invalid_button"
            )
        if self.callback_data is not None:
            size = len(self.callback_data.encode("utf-8"))
            if not 1 <= size <= CALLBACK_DATA_LIMIT:
                raise InvalidInput(
                    f"callback_data must be 1-{CALLBACK_DATA_LIMIT} bytes, got {size}", code="invalid_button"
                )
            return {"text": self.text, "callback_data": self.callback_data}
        assert self.url is not None
        return {"text": self.text, "url": self.url}


Keyboard = Sequence[Sequence[InlineButton]]


def keyboard_from_pairs(pairs: Iterable[tuple[str, str]], per_row: int = 1) -> list[list[InlineButton]]:
    """Rows of callback buttons from `OutboundMessage.buttons`-style (label, value) pairs."""
    buttons = [InlineButton(text=label, callback_data=value) for label, value in pairs]
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


@dataclass(frozen=True)
class InputFile:
    """Bytes to upload (as opposed to a file_id or URL string, which Telegram fetches itself)."""

    data: bytes
    filename: str
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class BotInfo:
    id: int
    username: str
    first_name: str
    can_join_groups: bool = False
    can_read_all_group_messages: bool = False


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    chat_id: int
    date: int
    message_thread_id: int | None
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class FileInfo:
    file_id: str
    file_unique_id: str
    file_size: int | None
    file_path: str | None


@dataclass(frozen=True)
class ForumTopic:
    message_thread_id: int
    name: str
    icon_color: int


# -- errors ----------------------------------------------------------------------------------------


def map_api_error(status: int, payload: Any, *, method: str) -> ChannelError:
    """Translate one failed Bot API answer (HTTP status and decoded body, if any) to a typed error."""
    body = payload if isinstance(payload, Mapping) else {}
    code = body.get("error_code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = status
    description = body.get("description")
    if not isinstance(description, str) or not description:
        description = f"HTTP {status}"
    params = body.get("parameters")
    params = params if isinstance(params, Mapping) else {}
    message = f"Telegram {method}: {description}"

    retry_after = params.get("retry_after")
    if code == 429:
        wait = float(retry_after) if isinstance(retry_after, int | float) else DEFAULT_RETRY_AFTER
        return RateLimited(message, retry_after=wait, platform_code=code)
    migrate_to = params.get("migrate_to_chat_id")
    if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
        return ChatMigrated(message, new_chat_id=migrate_to, platform_code=code)
    if code >= 500 or status >= 500:
        return ChannelUnavailable(message, platform_code=code)
    if code == 409:
        # Another getUpdates poller or an active webhook: a deployment state that changes, not a
        # property of the request, so it stays retryable.
        return ChannelError(message, platform_code=code)
    if 400 <= code < 500:
        # 400 (chat not found, bad request), 401 (bad token), 403 (blocked, kicked), 404 (unknown
        # token or method): sending the same request again cannot succeed.
        return PermanentDeliveryError(message, platform_code=code)
    # A 2xx/3xx without {"ok": true}: a proxy or a half-working server, worth another try later.
    return ChannelUnavailable(message, platform_code=code)


# -- client ----------------------------------------------------------------------------------------


class TelegramBotApi:
    """One bot's Bot API. `base_url` is the part before the token, e.g. "http://127.0.0.1:8081/bot"."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        file_base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not token:
            raise InvalidInput("a Telegram bot token is required", code="invalid_config")
        self._token = token
        self.base_url = base_url.rstrip("/")
        if file_base_url is None:
            # The Bot API serves files beside the methods: <root>/bot<token>/m and <root>/file/bot<token>/p
            if not self.base_url.endswith("/bot"):
                raise InvalidInput(
                    "file_base_url is required when base_url does not end in /bot", code="invalid_config"
                )
            file_base_url = self.base_url[: -len("/bot")] + "/file/bot"
        self.file_base_url = file_base_url.rstrip("/")
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    def __repr__(self) -> str:
        return f"TelegramBotApi(base_url={self.base_url!r}, token=***)"

    # lifecycle

    async def initialize(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True

    async def shutdown(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    # methods

    async def get_me(self) -> BotInfo:
        result = _result_object(await self.call("getMe"), "getMe", id=int)
        return BotInfo(
            id=result["id"],
            username=result.get("username", ""),
            first_name=result.get("first_name", ""),
            can_join_groups=bool(result.get("can_join_groups", False)),
            can_read_all_group_messages=bool(result.get("can_read_all_group_messages", False)),
        )

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        buttons: Keyboard | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        parse_mode: str | None = None,
        disable_link_preview: bool = False,
        disable_notification: bool = False,
    ) -> SentMessage:
        """Send one text message; longer text must be split first (`limits.split_text`)."""
        if not text.strip():
            raise InvalidInput("Telegram cannot send an empty message", code="invalid_message")
        if utf16_len(text) > TELEGRAM_TEXT_LIMIT:
            raise InvalidInput(
                f"text is over {TELEGRAM_TEXT_LIMIT} UTF-16 code units; split it first",
                code="invalid_message",
            )
        params: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": parse_mode}
        if disable_link_preview:
            params["link_preview_options"] = {"is_disabled": True}
        if disable_notification:
            params["disable_notification"] = True
        params.update(_addressing(buttons, message_thread_id, reply_to_message_id))
        return _sent(await self.call("sendMessage", params))

    async def send_photo(
        self,
        chat_id: int | str,
        photo: InputFile | str,
        *,
        caption: str | None = None,
        buttons: Keyboard | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> SentMessage:
        """`photo` is bytes to upload, or a file_id / HTTP URL Telegram already knows or can fetch."""
        return await self._send_media(
            "sendPhoto", "photo", chat_id, photo, caption, buttons, message_thread_id, reply_to_message_id
        )

    async def send_document(
        self,
        chat_id: int | str,
        document: InputFile | str,
        *,
        caption: str | None = None,
        buttons: Keyboard | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> SentMessage:
        return await self._send_media(
            "sendDocument",
            "document",
            chat_id,
            document,
            caption,
            buttons,
            message_thread_id,
            reply_to_message_id,
        )

    async def get_file(self, file_id: str) -> FileInfo:
        result = _result_object(await self.call("getFile", {"file_id": file_id}), "getFile", file_id=str)
        return FileInfo(
            file_id=result["file_id"],
            file_unique_id=result.get("file_unique_id", ""),
            file_size=result.get("file_size"),
            file_path=result.get("file_path"),
        )

    async def download_file(self, file_path: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
        """Fetch a file by the `file_path` of `get_file`; refuses more than `max_bytes`."""
        url = f"{self.file_base_url}{self._token}/{file_path.lstrip('/')}"
        session = await self._ensure_session()
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=self.timeout * 4)) as resp:
                if resp.status != 200:
                    payload = await _json_or_none(resp)
                    raise map_api_error(resp.status, payload, method="downloadFile")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise PermanentDeliveryError(f"Telegram file is larger than {max_bytes} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PermanentDeliveryError(f"Telegram file is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._transport_error("downloadFile", exc) from None

    async def download(self, file_id: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> tuple[FileInfo, bytes]:
        """get_file and download_file in one go (the download link is valid for an hour)."""
        info = await self.get_file(file_id)
        if info.file_size is not None and info.file_size > max_bytes:
            raise PermanentDeliveryError(f"Telegram file is larger than {max_bytes} bytes")
        if not info.file_path:
            raise PermanentDeliveryError("Telegram returned no file_path for this file")
        return info, await self.download_file(info.file_path, max_bytes=max_bytes)

    async def create_forum_topic(
        self,
        chat_id: int | str,
        name: str,
        *,
        icon_color: int | None = None,
        icon_custom_emoji_id: str | None = None,
    ) -> ForumTopic:
        """Create a topic; `name` is shortened to Telegram's 128 characters rather than refused."""
        params = {
            "chat_id": chat_id,
            "name": fit_topic_name(name),
            "icon_color": icon_color,
            "icon_custom_emoji_id": icon_custom_emoji_id,
        }
        result = _result_object(
            await self.call("createForumTopic", params), "createForumTopic", message_thread_id=int
        )
        return ForumTopic(
            message_thread_id=result["message_thread_id"],
            name=result.get("name", params["name"]),
            icon_color=result.get("icon_color", 0),
        )

    async def edit_forum_topic(
        self,
        chat_id: int | str,
        message_thread_id: int,
        *,
        name: str | None = None,
        icon_custom_emoji_id: str | None = None,
    ) -> bool:
        params = {
            "chat_id": chat_id,
            "message_thread_id": message_thread_id,
            "name": fit_topic_name(name) if name is not None else None,
            "icon_custom_emoji_id": icon_custom_emoji_id,
        }
        return bool(await self.call("editForumTopic", params))

    async def answer_callback_query(
        self,
        callback_query_id: str,
        *,
        text: str | None = None,
        show_alert: bool = False,
        url: str | None = None,
        cache_time: int | None = None,
    ) -> bool:
        params: dict[str, Any] = {
            "callback_query_id": callback_query_id,
            "text": text,
            "url": url,
            "cache_time": cache_time,
        }
        if show_alert:
            params["show_alert"] = True
        return bool(await self.call("answerCallbackQuery", params))

    async def set_webhook(
        self,
        url: str,
        *,
        secret_token: str | None = None,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool = False,
        max_connections: int | None = None,
    ) -> bool:
        params: dict[str, Any] = {
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": list(allowed_updates) if allowed_updates is not None else None,
            "max_connections": max_connections,
        }
        if drop_pending_updates:
            params["drop_pending_updates"] = True
        return bool(await self.call("setWebhook", params))

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> bool:
        params = {"drop_pending_updates": True} if drop_pending_updates else {}
        return bool(await self.call("deleteWebhook", params))

    async def get_updates(
        self,
        *,
        offset: int | None = None,
        timeout: int = 0,
        limit: int | None = None,
        allowed_updates: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Raw Update objects (feed them to `classify_update`). `offset` confirms all before it."""
        params: dict[str, Any] = {
            "offset": offset,
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": list(allowed_updates) if allowed_updates is not None else None,
        }
        # The server holds a long poll for `timeout` seconds: our own deadline must outlast it.
        result = await self.call("getUpdates", params, timeout=timeout + self.timeout)
        if not isinstance(result, list):
            raise ChannelUnavailable("Telegram getUpdates: result is not an array")
        return [u for u in result if isinstance(u, dict)]

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, InputFile] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call any Bot API method; returns `result` or raises a `ChannelError` subclass."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        session = await self._ensure_session()
        url = f"{self.base_url}{self._token}/{method}"
        request_timeout = aiohttp.ClientTimeout(total=timeout if timeout is not None else self.timeout)
        try:
            if files:
                data = _form(clean, files)
                request = session.post(url, data=data, timeout=request_timeout)
            else:
                request = session.post(url, json=clean, timeout=request_timeout)
            async with request as resp:
                payload = await _json_or_none(resp)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._transport_error(method, exc) from None
        log.debug("telegram %s -> %s", method, status)
        if status == 200 and isinstance(payload, Mapping) and payload.get("ok") is True:
            return payload.get("result")
        error = map_api_error(status, payload, method=method)
        log.info("telegram %s failed: %s (%s)", method, error, type(error).__name__)
        raise error

    # internals

    async def _send_media(
        self,
        method: str,
        field: str,
        chat_id: int | str,
        media: InputFile | str,
        caption: str | None,
        buttons: Keyboard | None,
        message_thread_id: int | None,
        reply_to_message_id: int | None,
    ) -> SentMessage:
        if caption is not None and utf16_len(caption) > TELEGRAM_CAPTION_LIMIT:
            raise InvalidInput(
                f"caption is over {TELEGRAM_CAPTION_LIMIT} UTF-16 code units", code="invalid_message"
            )
        params: dict[str, Any] = {"chat_id": chat_id, "caption": caption}
        params.update(_addressing(buttons, message_thread_id, reply_to_message_id))
        if isinstance(media, InputFile):
            return _sent(await self.call(method, params, files={field: media}))
        params[field] = media
        return _sent(await self.call(method, params))

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            await self.initialize()
        assert self._session is not None
        return self._session

    def _transport_error(self, method: str, exc: BaseException) -> ChannelUnavailable:
        # aiohttp puts the URL, and with it the token, into some messages (InvalidURL, response errors).
        detail = str(exc).replace(self._token, "***") or "timed out"
        return ChannelUnavailable(f"Telegram {method}: {type(exc).__name__}: {detail}")


def fit_topic_name(name: str) -> str:
    """Topic names are 1-128 characters: shorten with an ellipsis, never cutting a character in two."""
    name = " ".join(name.split()) or "-"
    if utf16_len(name) <= TOPIC_NAME_LIMIT:
        return name
    out = ""
    for ch in name:
        if utf16_len(out + ch) > TOPIC_NAME_LIMIT - 1:
            break
        out += ch
    return out.rstrip() + "…"


def _addressing(
    buttons: Keyboard | None, message_thread_id: int | None, reply_to_message_id: int | None
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if buttons:
        params["reply_markup"] = {"inline_keyboard": [[b.to_api() for b in row] for row in buttons]}
    if message_thread_id is not None:
        params["message_thread_id"] = message_thread_id
    if reply_to_message_id is not None:
        # A reply to a message deleted meanwhile should still be delivered, just not as a reply.
        params["reply_parameters"] = {"message_id": reply_to_message_id, "allow_sending_without_reply": True}
    return params


def _form(params: Mapping[str, Any], files: Mapping[str, InputFile]) -> aiohttp.FormData:
    # multipart/form-data: objects (reply_markup, ...) travel JSON-serialised, as the Bot API expects.
    # File names go as raw UTF-8 like browsers send them; aiohttp's default would percent-encode
    # them, and Telegram would show "%E6%8A%A5..." instead of "报价单.pdf".
    form = aiohttp.FormData(quote_fields=False)
    for key, value in params.items():
        form.add_field(key, value if isinstance(value, str) else json.dumps(value))
    for key, upload in files.items():
        filename = "".join(ch if ch.isprintable() else "_" for ch in upload.filename) or "file"
        form.add_field(key, upload.data, filename=filename, content_type=upload.content_type)
    return form


async def _json_or_none(resp: aiohttp.ClientResponse) -> Any:
    try:
        return await resp.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None


def _sent(raw: Any) -> SentMessage:
    result = _result_object(raw, "send", message_id=int, chat=Mapping)
    _result_object(result["chat"], "send", id=int)
    return SentMessage(
        message_id=result["message_id"],
        chat_id=result["chat"]["id"],
        date=result.get("date", 0),
        message_thread_id=result.get("message_thread_id"),
        raw=result,
    )


def _result_object(result: Any, method: str, **required: type) -> Mapping[str, Any]:
    """The `result` object, with the fields we index checked: a garbled answer is the server's fault."""
    if not isinstance(result, Mapping):
        raise ChannelUnavailable(f"Telegram {method}: result is not an object")
    for key, kind in required.items():
        value = result.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ChannelUnavailable(f"Telegram {method}: result has no valid {key}")
    return result


__all__ = [
    "BotInfo",
    "ChatMigrated",
    "FileInfo",
    "ForumTopic",
    "InlineButton",
    "InputFile",
    "Keyboard",
    "SentMessage",
    "TelegramBotApi",
    "fit_topic_name",
    "keyboard_from_pairs",
    "map_api_error",
]
