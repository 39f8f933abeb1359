"""A fake Telegram Bot API server on loopback, for tests and benchmarks.

It speaks the wire format of the real API closely enough for our client and python-telegram-bot
(JSON, form-encoded and multipart requests; `{"ok": ..., "result"|"error_code"...}` answers), keeps
chats, messages, forum topics, files and an update queue in memory, records every request with its
time, and can misbehave on demand: 429 with `retry_after`, 5xx, blocked users, and (with
`enforce_limits`) the platform's own flood limits.

    async with FakeTelegramApi() as tg:
        api = TelegramBotApi(tg.token, base_url=tg.base_url)
        tg.push_message(42, "hello")
        ...
        assert tg.sent_messages(42)[0]["text"] == "..."
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
FORUM_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
MAX_GETFILE_BYTES = 20 * 1024 * 1024
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})

# Parameters that are strings in the Bot API even when they look like JSON ("123" as a text).
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "name",
        "url",
        "secret_token",
        "callback_query_id",
        "file_id",
        "parse_mode",
        "icon_custom_emoji_id",
        "photo",
        "document",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
    }
)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request as the server saw it, and what it answered."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    at: float  # time.monotonic() on arrival: the clock asyncio and SendRateLimiter use
    token_ok: bool
    status: int = 0
    response: Any = None

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class FakeChat:
    id: int | str
    type: str  # private, group, supergroup, channel
    title: str | None = None
    is_forum: bool = False
    blocked: bool = False  # private chat whose user blocked the bot: 403
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    topics: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1

    def to_api(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            chat["first_name"] = self.title or f"User {self.id}"
        else:
            chat["title"] = self.title or f"Chat {self.id}"
        if self.is_forum:
            chat["is_forum"] = True
        return chat


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    file_name: str | None
    mime_type: str | None
    size: int  # may be claimed larger than `data` to exercise the 20 MB refusal


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = dict(parameters or {})


class FakeTelegramApi:
    """The fake server. Unknown chats are created on first use: positive ids as private chats,
    negative ids as forum supergroups (the staff group shape), unless `strict_chats` is set, in which
    case they answer "chat not found" until `add_chat` registers them."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "omnigate_test_bot",
        enforce_limits: bool = False,
        limit_tolerance: float = 0.05,
        strict_chats: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.username = username
        self.enforce_limits = enforce_limits
        # Arrival times jitter by a few ms; a client pacing at exactly 1/s must not be punished for it.
        self.limit_tolerance = limit_tolerance
        self.strict_chats = strict_chats
        self.requests: list[RecordedRequest] = []
        self.chats: dict[int | str, FakeChat] = {}
        self.webhook: dict[str, Any] | None = None
        self.callback_answers: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(10_000)
        self._allowed_updates: list[str] | None = None
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._files: dict[str, _StoredFile] = {}
        self._file_paths: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._callback_ids = itertools.count(4_242_000_000_000_000_001)
        self._rate_limits: dict[tuple[str, Any], deque[float]] = {}
        self._failures: dict[str, deque[tuple[int, str, str | None]]] = {}
        self._sent_at: dict[int | str, deque[float]] = {}
        self._sent_global: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # No access log: request paths carry the bot token, and the real platform's logs are not ours.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._closing = True
        self._wake()  # long polls return at once instead of holding up the shutdown
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """What goes before the token: pass as `base_url` to our client or python-telegram-bot."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test knobs --------------------------------------------------------------------------------

    def add_chat(
        self, chat_id: int | str, type: str = "private", *, title: str | None = None, is_forum: bool = False
    ) -> FakeChat:
        chat = FakeChat(id=chat_id, type=type, title=title, is_forum=is_forum)
        self.chats[chat_id] = chat
        return chat

    def block_chat(self, chat_id: int | str) -> None:
        """The user blocked the bot: sends answer 403 "Forbidden: bot was blocked by the user"."""
        self._chat(chat_id, create=True).blocked = True

    def rate_limit_next(
        self, chat_id: int | str | None, count: int = 1, *, retry_after: int = 1, method: str = "sendMessage"
    ) -> None:
        """The next `count` `method` calls to `chat_id` (None: to any chat) answer 429."""
        queue = self._rate_limits.setdefault((method, chat_id), deque())
        queue.extend([float(retry_after)] * count)

    def fail_next(
        self,
        method: str,
        count: int = 1,
        *,
        status: int = 500,
        description: str | None = None,
        body: str | None = None,
    ) -> None:
        """The next `count` calls of `method` answer `status`; `body` replaces the JSON (a proxy page)."""
        text = description or ("Internal Server Error" if status >= 500 else "Bad Request")
        self._failures.setdefault(method, deque()).extend([(status, text, body)] * count)

    def add_file(
        self,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        kind: str = "documents",
        claimed_size: int | None = None,
    ) -> str:
        """Store a file as if a user had sent it; returns its file_id (for getFile and downloads)."""
        return self._store_file(data, file_name, mime_type, kind, claimed_size).file_id

    def push_update(self, update: Mapping[str, Any]) -> int:
        """Queue an update for getUpdates; an `update_id` is assigned when missing. Returns it."""
        stored = dict(update)
        if "update_id" not in stored:
            stored["update_id"] = next(self._update_ids)
        self._updates.append(stored)
        self._wake()
        return int(stored["update_id"])

    def push_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Customer",
        username: str | None = None,
        language_code: str | None = "en",
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build a message update as a user would send it, keep it in the chat, queue it; returns it."""
        chat = self._chat(chat_id, create=True)
        user: dict[str, Any] = {"id": user_id if user_id is not None else abs(chat_id), "is_bot": False}
        user["first_name"] = first_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat),
            "from": user,
            "chat": chat.to_api(),
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                length = len(text.split()[0].encode("utf-16-le")) // 2
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        self._thread_and_reply(chat, message, message_thread_id, reply_to_message_id, allow_missing=False)
        message.update(extra or {})
        chat.messages[message["message_id"]] = message
        update = {"update_id": next(self._update_ids), "message": message}
        self.push_update(update)
        return update

    def push_callback(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Customer",
    ) -> dict[str, Any]:
        """A tap on an inline button under `message_id` (usually one the bot sent)."""
        chat = self._chat(chat_id, create=True)
        message = chat.messages.get(message_id) or {
            "message_id": message_id,
            "chat": chat.to_api(),
            "date": 0,
        }
        query = {
            "id": str(next(self._callback_ids)),
            "from": {
                "id": user_id if user_id is not None else abs(chat_id),
                "is_bot": False,
                "first_name": first_name,
            },
            "message": message,
            "chat_instance": str(abs(hash(chat_id))),
            "data": data,
        }
        update = {"update_id": next(self._update_ids), "callback_query": query}
        self.push_update(update)
        return update

    async def deliver_webhook(self, update: Mapping[str, Any], *, secret_token: str | None = None) -> int:
        """POST an update to the registered webhook as Telegram would; returns the HTTP status."""
        if self.webhook is None or not self.webhook.get("url"):
            raise RuntimeError("no webhook is set")
        headers = {}
        secret = secret_token if secret_token is not None else self.webhook.get("secret_token")
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.webhook["url"], json=dict(update), headers=headers) as resp:
            await resp.read()
            return resp.status

    # -- assertions --------------------------------------------------------------------------------

    def calls(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method]

    def sent_messages(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Messages the bot delivered (text, photo, document), in order; all chats when None."""
        return [
            r.response["result"]
            for r in self.requests
            if r.method in SEND_METHODS
            and r.ok
            and (chat_id is None or r.response["result"]["chat"]["id"] == chat_id)
        ]

    def send_times(self, chat_id: int | str | None = None) -> list[float]:
        """Arrival times of successful sends (to one chat, or all)."""
        return [
            r.at
            for r in self.requests
            if r.method in SEND_METHODS
            and r.ok
            and (chat_id is None or r.response["result"]["chat"]["id"] == chat_id)
        ]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    # -- HTTP --------------------------------------------------------------------------------------

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        record = RecordedRequest(
            method=method,
            params=params,
            files=files,
            at=time.monotonic(),
            token_ok=request.match_info["token"] == self.token,
        )
        self.requests.append(record)
        try:
            if not record.token_ok:
                raise _ApiError(401, "Unauthorized")
            self._injected_failure(method, params)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise _ApiError(404, "Not Found")
            result = await handler(params, files)
            record.status, record.response = 200, {"ok": True, "result": result}
        except _ApiError as exc:
            record.status = exc.code
            record.response = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                record.response["parameters"] = exc.parameters
        except _RawFailure as raw:
            record.status, record.response = raw.status, raw.body
            return web.Response(status=raw.status, text=raw.body, content_type="text/html")
        return web.json_response(record.response, status=record.status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        ok = request.match_info["token"] == self.token
        stored = self._file_paths.get(request.match_info["path"]) if ok else None
        self.requests.append(
            RecordedRequest(
                method="downloadFile",
                params={"file_path": request.match_info["path"]},
                files={},
                at=time.monotonic(),
                token_ok=ok,
                status=200 if stored else (404 if ok else 401),
            )
        )
        if not ok:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    # -- methods -----------------------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Omnigate Test",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        url = _required(params, "url")
        if url == "":
            self.webhook = None
            return True
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
        }
        self._wake()  # a waiting getUpdates learns about the conflict
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook and self.webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if self.webhook is not None:
            raise _ApiError(
                409,
                _WEBHOOK_CONFLICT,
            )
        offset = params.get("offset")
        if isinstance(offset, int) and offset > 0:
            # Calling with an offset confirms, and forgets, every update before it.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll is now superseded
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    _POLL_CONFLICT,
                )
            if self.webhook is not None:
                raise _ApiError(409, _WEBHOOK_CONFLICT)
            ready = [u for u in self._updates if self._allowed(u)][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing:
                return ready
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    async def _m_sendMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._send_target(params, "sendMessage")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if _utf16(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        message = self._new_message(chat, params)
        message["text"] = text
        return self._commit_send(chat, message)

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._send_target(params, "sendPhoto")
        stored = self._media_param(params, files, "photo", "photos")
        message = self._new_message(chat, params)
        small = f"{stored.file_id}-thumb"
        message["photo"] = [
            {
                "file_id": small,
                "file_unique_id": f"{stored.file_unique_id}t",
                "width": 90,
                "height": 67,
                "file_size": 1,
            },
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 1280,
                "height": 960,
                "file_size": stored.size,
            },
        ]
        self._caption(message, params)
        return self._commit_send(chat, message)

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._send_target(params, "sendDocument")
        stored = self._media_param(params, files, "document", "documents")
        message = self._new_message(chat, params)
        document: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        message["document"] = document
        self._caption(message, params)
        return self._commit_send(chat, message)

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        file_id = _required(params, "file_id")
        stored = self._files.get(str(file_id))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if stored.size > MAX_GETFILE_BYTES:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def _m_createForumTopic(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._existing_chat(_required(params, "chat_id"))
        name = _required(params, "name")
        if not chat.is_forum:
            raise _ApiError(400, "Bad Request: the chat is not a forum")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise _ApiError(400, "Bad Request: TOPIC_TITLE_INVALID")
        color = params.get("icon_color", FORUM_ICON_COLORS[0])
        if color not in FORUM_ICON_COLORS:
            raise _ApiError(400, "Bad Request: TOPIC_ICON_COLOR_INVALID")
        # A topic is identified by the id of its creation service message, as on the real platform.
        thread_id = self._next_message_id(chat)
        created = {"name": name, "icon_color": color}
        chat.messages[thread_id] = {
            "message_id": thread_id,
            "message_thread_id": thread_id,
            "from": self._bot_user(),
            "chat": chat.to_api(),
            "date": int(time.time()),
            "forum_topic_created": created,
            "is_topic_message": True,
        }
        topic = {"message_thread_id": thread_id, "name": name, "icon_color": color}
        if params.get("icon_custom_emoji_id"):
            topic["icon_custom_emoji_id"] = params["icon_custom_emoji_id"]
        chat.topics[thread_id] = topic
        return dict(topic)

    async def _m_editForumTopic(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._existing_chat(_required(params, "chat_id"))
        thread_id = _required(params, "message_thread_id")
        topic = chat.topics.get(thread_id) if isinstance(thread_id, int) else None
        if topic is None:
            raise _ApiError(400, "Bad Request: message thread not found")
        name = params.get("name")
        if name is not None:
            if not isinstance(name, str) or not 1 <= len(name) <= 128:
                raise _ApiError(400, "Bad Request: TOPIC_TITLE_INVALID")
            if name == topic["name"] and params.get("icon_custom_emoji_id") is None:
                raise _ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
            topic["name"] = name
        if params.get("icon_custom_emoji_id") is not None:
            topic["icon_custom_emoji_id"] = params["icon_custom_emoji_id"]
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        query_id = _required(params, "callback_query_id")
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append({"callback_query_id": str(query_id), **params})
        return True

    # -- internals ---------------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _allowed(self, update: Mapping[str, Any]) -> bool:
        allowed = self._allowed_updates
        if not allowed:  # None or []: the default set, which excludes reactions and chat_member
            return not any(k in update for k in ("chat_member", "message_reaction", "message_reaction_count"))
        return any(k in update for k in allowed)

    def _injected_failure(self, method: str, params: Mapping[str, Any]) -> None:
        failures = self._failures.get(method)
        if failures:
            status, text, body = failures.popleft()
            if body is not None:
                raise _RawFailure(status, body)
            raise _ApiError(status, text)
        chat_id = _chat_key(params.get("chat_id"))
        for key in ((method, chat_id), (method, None)):
            queue = self._rate_limits.get(key)
            if queue:
                retry_after = queue.popleft()
                raise _too_many(retry_after)

    def _chat(self, chat_id: int | str, *, create: bool) -> FakeChat:
        chat = self.chats.get(chat_id)
        if chat is None:
            if not create:
                raise _ApiError(400, "Bad Request: chat not found")
            if isinstance(chat_id, int) and chat_id > 0:
                chat = self.add_chat(chat_id, "private")
            else:
                chat = self.add_chat(chat_id, "supergroup", is_forum=True)
        return chat

    def _existing_chat(self, raw_chat_id: Any) -> FakeChat:
        chat_id = _chat_key(raw_chat_id)
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return self._chat(chat_id, create=not self.strict_chats)

    def _send_target(self, params: Mapping[str, Any], method: str) -> FakeChat:
        chat = self._existing_chat(_required(params, "chat_id"))
        if chat.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if self.enforce_limits:
            self._check_flood(chat)
        return chat

    def _check_flood(self, chat: FakeChat) -> None:
        now = time.monotonic()
        tol = self.limit_tolerance
        sent = self._sent_at.setdefault(chat.id, deque())
        while sent and sent[0] <= now - 60.0:
            sent.popleft()
        waits: list[float] = []
        if sent and now - sent[-1] < 1.0 - tol:
            waits.append(sent[-1] + 1.0 - now)
        if chat.type in ("group", "supergroup") and len(sent) >= 20:
            if now - sent[-20] < 60.0 - tol:
                waits.append(sent[-20] + 60.0 - now)
        while self._sent_global and self._sent_global[0] <= now - 1.0:
            self._sent_global.popleft()
        if len(self._sent_global) >= 30 and now - self._sent_global[-30] < 1.0 - tol:
            waits.append(self._sent_global[-30] + 1.0 - now)
        if waits:
            raise _too_many(max(waits))

    def _commit_send(self, chat: FakeChat, message: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        self._sent_at.setdefault(chat.id, deque()).append(now)
        self._sent_global.append(now)
        chat.messages[message["message_id"]] = message
        return message

    def _new_message(self, chat: FakeChat, params: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": 0,
            "from": self._bot_user(),
            "chat": chat.to_api(),
            "date": int(time.time()),
        }
        reply = params.get("reply_parameters")
        reply_to: int | None = None
        allow_missing = False
        if isinstance(reply, Mapping):
            reply_to = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
        elif isinstance(params.get("reply_to_message_id"), int):
            reply_to = params["reply_to_message_id"]
        self._thread_and_reply(
            chat, message, params.get("message_thread_id"), reply_to, allow_missing=allow_missing
        )
        if params.get("reply_markup") is not None:
            message["reply_markup"] = params["reply_markup"]
        message["message_id"] = self._next_message_id(chat)  # only once the request is known to be valid
        return message

    def _thread_and_reply(
        self,
        chat: FakeChat,
        message: dict[str, Any],
        thread_id: Any,
        reply_to: int | None,
        *,
        allow_missing: bool,
    ) -> None:
        if thread_id is not None:
            if not chat.is_forum or thread_id not in chat.topics:
                raise _ApiError(400, "Bad Request: message thread not found")
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        target = chat.messages.get(reply_to) if reply_to is not None else None
        if reply_to is not None and target is None and not allow_missing:
            raise _ApiError(400, "Bad Request: message to be replied not found")
        if target is None and thread_id is not None:
            # Forum rule: a topic message that replies to nothing "replies" to the topic's creation.
            target = chat.messages.get(thread_id)
        if target is not None:
            message["reply_to_message"] = {k: v for k, v in target.items() if k != "reply_to_message"}

    def _media_param(
        self, params: dict[str, Any], files: Mapping[str, UploadedFile], name: str, kind: str
    ) -> _StoredFile:
        upload = files.get(name)
        if upload is not None:
            return self._store_file(upload.data, upload.filename, upload.content_type, kind, None)
        value = params.get(name)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self._store_file(b"", value.rsplit("/", 1)[-1] or None, None, kind, None)
        if value is None:
            raise _ApiError(400, f"Bad Request: there is no {name} in the request")
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _store_file(
        self, data: bytes, file_name: str | None, mime_type: str | None, kind: str, claimed_size: int | None
    ) -> _StoredFile:
        seq = next(self._file_seq)
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[-1]
        stored = _StoredFile(
            file_id=f"fake-file-{seq}-{kind}",
            file_unique_id=f"uniq{seq}",
            data=data,
            file_path=f"{kind}/file_{seq}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
            size=claimed_size if claimed_size is not None else len(data),
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.file_path] = stored
        return stored

    def _caption(self, message: dict[str, Any], params: Mapping[str, Any]) -> None:
        caption = params.get("caption")
        if isinstance(caption, str) and caption:
            if _utf16(caption) > 1024:
                raise _ApiError(400, "Bad Request: message caption is too long")
            message["caption"] = caption

    def _next_message_id(self, chat: FakeChat) -> int:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        return message_id

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Omnigate Test", "username": self.username}


class _RawFailure(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(body)
        self.status = status
        self.body = body


def _too_many(retry_after: float) -> _ApiError:
    seconds = max(1, math.ceil(retry_after))  # the platform speaks whole seconds
    return _ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


def _required(params: Mapping[str, Any], name: str) -> Any:
    if name not in params:
        raise _ApiError(400, f"Bad Request: parameter {name!r} is required")
    return params[name]


def _chat_key(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        try:
            return int(value)
        except ValueError:
            return value
    return None


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from the query string and a JSON, urlencoded or multipart body, as the API allows."""
    params: dict[str, Any] = {k: _decode_value(k, v) for k, v in request.query.items()}
    files: dict[str, UploadedFile] = {}
    if request.method != "POST" or not request.body_exists:
        return params, files
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update(body)
        return params, files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
        else:
            params[key] = _decode_value(key, str(value))
    return params, files


def _decode_value(key: str, value: str) -> Any:
    # Form-encoded clients (python-telegram-bot among them) JSON-encode everything but strings.
    if key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
