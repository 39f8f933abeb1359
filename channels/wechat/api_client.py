"""Async client for the few WeChat Official Account API endpoints Omnigate uses.

wechatpy's client blocks the event loop, so this is a small aiohttp client instead. The access
token comes from `POST /cgi-bin/stable_token` and is shared through a `TokenStore` (MongoDB in
production) with a refresh lease, so several gateway processes make one refresh per expiry
instead of invalidating each other's tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard, TypeVar

import aiohttp

from channels.wechat.errors import (
    AccessTokenRejected,
    CredentialsRejected,
    CustomerServiceWindowClosed,
    TemplateRejected,
    UserNotFollowing,
)
from channels.wechat.replies import Article
from ticket_core.errors import (
    ChannelError,
    ChannelUnavailable,
    PermanentDeliveryError,
    RateLimited,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: In normal mode the platform issues the next token during the last 5 minutes and keeps the old
#: one valid for those 5 minutes; refreshing 3 minutes ahead lands well inside that overlap.
DEFAULT_REFRESH_MARGIN = 180.0
#: Long enough for the owner's two stable_token calls (normal, then forced) at the default timeout.
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_MEDIA_BYTES = 20 * 1024 * 1024
_CHINA_UTC_OFFSET = 8 * 3600  # daily API quotas reset at midnight Beijing time


class SecretValue(Protocol):
    """A secret that only reveals itself on request (gateway.config.Secret satisfies this)."""

    def get(self) -> str: ...


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # epoch seconds


class TokenStore(Protocol):
    """Where the access token lives between processes. The MongoDB implementation keeps one
    document per app id in `channel_state`; the lease is a guarded `update_one`."""

    async def get(self, app_id: str) -> AccessToken | None: ...

    async def put(self, app_id: str, token: AccessToken) -> None: ...

    async def acquire_lease(self, app_id: str, owner: str, ttl_seconds: float) -> bool:
        """Take the refresh lease if it is free, expired, or already `owner`'s."""
        ...

    async def release_lease(self, app_id: str, owner: str) -> None:
        """Release the lease if `owner` still holds it."""
        ...


class InMemoryTokenStore:
    """TokenStore for tests; share one instance between clients to simulate several processes."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, AccessToken] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    async def get(self, app_id: str) -> AccessToken | None:
        return self._tokens.get(app_id)

    async def put(self, app_id: str, token: AccessToken) -> None:
        self._tokens[app_id] = token

    async def acquire_lease(self, app_id: str, owner: str, ttl_seconds: float) -> bool:
        holder = self._leases.get(app_id)
        if holder and holder[0] != owner and holder[1] > self._clock():
            return False
        self._leases[app_id] = (owner, self._clock() + ttl_seconds)
        return True

    async def release_lease(self, app_id: str, owner: str) -> None:
        if self._leases.get(app_id, ("", 0.0))[0] == owner:
            del self._leases[app_id]


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str
    filename: str | None = None


# -- the one place WeChat's answers become typed errors ---------------------------------------------

_TOKEN_REJECTED = {40001, 40014, 42001}
_CREDENTIALS = {40013, 40125, 40164, 41002, 41004, 61024}
_WINDOW_CLOSED = {45015, 45047}
_PERMANENT = {
    40003,  # invalid openid
    40007,  # invalid media_id
    40008,  # invalid message type
    44002,  # empty post data
    45002,  # content too long
    45008,  # too many articles (customer-service news takes one)
    47001,  # malformed JSON / data
    48001,  # API not authorised for this account
}


def map_wechat_error(
    *,
    http_status: int | None = None,
    payload: Any = None,
    cause: BaseException | None = None,
    retry_after_header: str | None = None,
    now: float | None = None,
) -> ChannelError | None:
    """Translate a transport failure, HTTP status or WeChat `errcode` into a typed error.

    Returns None for success. Every error carries the errcode (or HTTP status) as `platform_code`.
    """
    if cause is not None:
        return ChannelUnavailable(f"WeChat API unreachable: {type(cause).__name__}")
    if http_status == 429:
        return RateLimited(
            "WeChat API HTTP 429", retry_after=_seconds(retry_after_header, 1.0), platform_code=429
        )
    if http_status is not None and http_status >= 500:
        return ChannelUnavailable(f"WeChat API HTTP {http_status}", platform_code=http_status)
    if http_status is not None and http_status != 200:
        return ChannelError(f"WeChat API HTTP {http_status}", platform_code=http_status)
    if not isinstance(payload, Mapping):
        return ChannelError("WeChat API answered something that is not a JSON object")
    errcode = payload.get("errcode", 0)
    if not isinstance(errcode, int) or isinstance(errcode, bool):
        return ChannelError(f"WeChat API errcode is not an integer: {errcode!r}")
    if errcode == 0:
        return None
    message = f"WeChat errcode {errcode}: {str(payload.get('errmsg', ''))[:200]}"
    if errcode in _TOKEN_REJECTED:
        return AccessTokenRejected(message, platform_code=errcode)
    if errcode in _WINDOW_CLOSED:
        return CustomerServiceWindowClosed(message, platform_code=errcode)
    if errcode == 43004:
        return UserNotFollowing(message, platform_code=errcode)
    if errcode == 40037:
        return TemplateRejected(message, platform_code=errcode)
    if errcode in _CREDENTIALS:
        return CredentialsRejected(message, platform_code=errcode)
    if errcode == 45009:  # daily quota: nothing succeeds before it resets
        return RateLimited(message, retry_after=_until_china_midnight(now), platform_code=errcode)
    if errcode == 45011:  # per-minute frequency
        return RateLimited(message, retry_after=60.0, platform_code=errcode)
    if errcode == -1:  # "system busy"
        return ChannelUnavailable(message, platform_code=errcode)
    if errcode in _PERMANENT:
        return PermanentDeliveryError(message, platform_code=errcode)
    return ChannelError(message, platform_code=errcode)


def _seconds(header: str | None, default: float) -> float:
    try:
        return max(float(header), 0.0) if header else default
    except ValueError:
        return default


def _until_china_midnight(now: float | None) -> float:
    t = time.time() if now is None else now
    local = t + _CHINA_UTC_OFFSET
    return max(86400 - local % 86400, 1.0)


# -- the client -------------------------------------------------------------------------------------


class WeChatApiClient:
    """One official account's API. Safe to share between tasks; holds no per-request state."""

    def __init__(
        self,
        *,
        api_base_url: str,
        app_id: str,
        app_secret: SecretValue,
        session: aiohttp.ClientSession,
        token_store: TokenStore,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        request_timeout: float = 10.0,
        max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
        owner: str | None = None,
    ) -> None:
        self._base = api_base_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self._session = session
        self._store = token_store
        self._clock = clock
        self._margin = refresh_margin
        self._lease_seconds = lease_seconds
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._max_media_bytes = max_media_bytes
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._refresh_lock = asyncio.Lock()  # one refresher per process; the lease covers the rest
        # Saves a store read per call; a token refreshed elsewhere shows up as 40001, which rereads.
        self._cached: AccessToken | None = None

    def __repr__(self) -> str:
        return f"WeChatApiClient(app_id={self.app_id!r}, api_base_url={self._base!r})"

    # -- token ---------------------------------------------------------------------------------

    async def stable_token(self) -> str:
        """A valid access token: the shared one, or a fresh one if it is near expiry."""
        if self._usable(self._cached, rejected=None):
            return self._cached.value
        token = await self._store.get(self.app_id)
        if not self._usable(token, rejected=None):
            token = await self._refresh(rejected=None)
        self._cached = token
        return token.value

    def _usable(self, token: AccessToken | None, *, rejected: str | None) -> TypeGuard[AccessToken]:
        return (
            token is not None and token.value != rejected and token.expires_at - self._margin > self._clock()
        )

    async def _refresh(self, *, rejected: str | None) -> AccessToken:
        async with self._refresh_lock:
            deadline = time.monotonic() + 2 * self._lease_seconds
            while True:
                token = await self._store.get(self.app_id)
                if self._usable(token, rejected=rejected):
                    return token
                if await self._store.acquire_lease(self.app_id, self._owner, self._lease_seconds):
                    try:
                        return await self._refresh_as_owner(rejected)
                    finally:
                        await self._store.release_lease(self.app_id, self._owner)
                if time.monotonic() > deadline:
                    raise ChannelUnavailable("another process holds the token lease but stores no token")
                await asyncio.sleep(0.05)

    async def _refresh_as_owner(self, rejected: str | None) -> AccessToken:
        # Another process may have refreshed between our check and taking the lease.
        token = await self._store.get(self.app_id)
        if self._usable(token, rejected=rejected):
            return token
        token = await self._fetch_stable_token(force_refresh=False)
        if rejected is not None and token.value == rejected:
            # The platform still hands out the token it just refused: only a forced refresh
            # (20 a day, 30 s apart) replaces it. Normal mode first, to spare that quota.
            token = await self._fetch_stable_token(force_refresh=True)
        await self._store.put(self.app_id, token)
        return token

    async def _fetch_stable_token(self, *, force_refresh: bool) -> AccessToken:
        body = {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self._secret.get(),
            "force_refresh": force_refresh,
        }
        started = self._clock()
        payload = await self._request("POST", "/cgi-bin/stable_token", json_body=body)
        value, expires_in = payload.get("access_token"), payload.get("expires_in")
        if not isinstance(value, str) or not isinstance(expires_in, int | float):
            raise ChannelError("stable_token answer lacks access_token/expires_in")
        log.info("wechat %s: new access token, expires in %ss", self.app_id, expires_in)
        return AccessToken(value=value, expires_at=started + float(expires_in))

    # -- endpoints -----------------------------------------------------------------------------

    async def send_custom_text(self, openid: str, content: str) -> None:
        await self._post(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": content}},
        )

    async def send_custom_image(self, openid: str, media_id: str) -> None:
        body = {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}}
        await self._post("/cgi-bin/message/custom/send", body)

    async def send_custom_news(self, openid: str, articles: Sequence[Article]) -> None:
        """WeChat currently accepts one article per customer-service news message (45008 beyond);
        send several suggestions as text with links, or one news message each."""
        items = [
            {"title": a.title, "description": a.description, "url": a.url, "picurl": a.pic_url}
            for a in articles
        ]
        body = {"touser": openid, "msgtype": "news", "news": {"articles": items}}
        await self._post("/cgi-bin/message/custom/send", body)

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: Mapping[str, str | Mapping[str, str]],
        *,
        url: str | None = None,
        miniprogram: Mapping[str, str] | None = None,
        client_msg_id: str | None = None,
    ) -> int:
        """Send a template message; returns WeChat's msgid (matched later by TEMPLATESENDJOBFINISH).

        `client_msg_id` makes WeChat drop a duplicate send, which protects outbox retries.
        """
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: ({"value": v} if isinstance(v, str) else dict(v)) for k, v in data.items()},
        }
        if url:
            body["url"] = url
        if miniprogram:
            body["miniprogram"] = dict(miniprogram)
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        payload = await self._post("/cgi-bin/message/template/send", body)
        msgid = payload.get("msgid")
        if not isinstance(msgid, int):
            raise ChannelError("template/send answer lacks msgid")
        return msgid

    async def download_media(self, media_id: str) -> Media:
        """Temporary media (images, voice) by media_id. Video answers JSON with a `video_url`;
        that JSON is returned as-is with content type application/json."""
        return await self._with_token(lambda token: self._get_media(token, media_id))

    # -- plumbing ------------------------------------------------------------------------------

    async def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._with_token(
            lambda token: self._request("POST", path, json_body=body, params={"access_token": token})
        )

    async def _with_token(self, call: Callable[[str], Awaitable[T]]) -> T:
        token = await self.stable_token()
        try:
            return await call(token)
        except AccessTokenRejected:
            log.info("wechat %s: access token rejected, refreshing once", self.app_id)
            self._cached = await self._refresh(rejected=token)
            return await call(self._cached.value)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        data, headers = None, {}
        if json_body is not None:
            # Raw UTF-8 as wechatpy sends it: some message types show \uXXXX escapes literally.
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self._session.request(
                method, self._base + path, params=params, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._fail(path, map_wechat_error(cause=exc)) from exc
        payload = _json_or_none(raw) if status == 200 else None
        error = map_wechat_error(
            http_status=status, payload=payload, retry_after_header=retry_after, now=self._clock()
        )
        if error is not None:
            raise self._fail(path, error)
        assert isinstance(payload, dict)
        return payload

    async def _get_media(self, token: str, media_id: str) -> Media:
        path = "/cgi-bin/media/get"
        params = {"access_token": token, "media_id": media_id}
        try:
            async with self._session.get(self._base + path, params=params, timeout=self._timeout) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                content_type = resp.content_type
                filename = resp.content_disposition.filename if resp.content_disposition else None
                raw = await self._read_capped(resp) if status == 200 else b""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._fail(path, map_wechat_error(cause=exc)) from exc
        # Errors come back as JSON, sometimes labelled text/plain; media never has these types.
        is_json = content_type in ("application/json", "text/plain")
        if status != 200 or is_json:
            payload = _json_or_none(raw) if is_json else None
            error = map_wechat_error(
                http_status=status, payload=payload, retry_after_header=retry_after, now=self._clock()
            )
            if error is not None:
                raise self._fail(path, error)
            return Media(data=raw, content_type="application/json", filename=filename)
        return Media(data=raw, content_type=content_type, filename=filename)

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        if (resp.content_length or 0) > self._max_media_bytes:
            raise PermanentDeliveryError(f"media exceeds {self._max_media_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_media_bytes:
                raise PermanentDeliveryError(f"media exceeds {self._max_media_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _fail(self, path: str, error: ChannelError | None) -> ChannelError:
        assert error is not None
        # Only the path: the query string carries the access token.
        log.warning("wechat %s %s failed: %s", self.app_id, path, error)
        return error


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
