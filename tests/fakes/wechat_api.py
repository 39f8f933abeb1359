"""A fake WeChat Official Account API on loopback, speaking the real JSON shapes and error codes.

    async with FakeWeChatApi(clock=clock) as api:
        api.set_user("o1", last_user_message_at=clock())
        client = WeChatApiClient(api_base_url=api.base_url, ...)

Rules it enforces (as WeChat does): stable_token normal mode returns the current token until its
last `renew_before` seconds, then issues the next one while the old stays valid until it expires;
force_refresh invalidates the old token at once (40001) and is refused more often than every
`force_min_interval` seconds (the current token comes back). Customer-service messages need a
follower who wrote within 48 hours (45015) and allow 5 per such window (45047); unfollowed users
get 43004; unknown template ids 40037. Knobs: `fail_next(n, errcode=...)` or `fail_next(n,
http_status=500)`. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from channels.wechat.crypto import WeChatMessageCrypto
from channels.wechat.signing import msg_signature, plain_signature
from channels.wechat.xml_parse import parse_xml_fields

WINDOW_SECONDS = 48 * 3600
WINDOW_QUOTA = 5
MAX_TEXT_BYTES = 2048

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    -1: "system error",
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any


@dataclass
class FakeUser:
    following: bool = True
    last_user_message_at: float | None = None
    sent_in_window: int = 0


@dataclass
class _Failure:
    remaining: int
    errcode: int | None
    http_status: int | None
    path: str | None


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class FakeWeChatApi:
    app_id: str = "wxfake0000000001"
    app_secret: str = "fake-app-secret"
    expires_in: int = 7200
    renew_before: float = 300.0
    force_min_interval: float = 30.0
    clock: Callable[[], float] = time.time
    templates: set[str] = field(default_factory=lambda: {"TPL_STATUS"})
    users: dict[str, FakeUser] = field(default_factory=dict)
    media: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)  # id -> data, type, filename
    requests: list[RecordedRequest] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # accepted message bodies
    _tokens: list[_Token] = field(default_factory=list)  # all still-valid tokens, newest last
    _last_force: float | None = None
    _failures: list[_Failure] = field(default_factory=list)
    _msgids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000_001))
    _runner: web.AppRunner | None = None
    base_url: str = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeWeChatApi:
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- knobs for tests -----------------------------------------------------------------------

    def set_user(
        self, openid: str, *, following: bool = True, last_user_message_at: float | None = None
    ) -> None:
        self.users[openid] = FakeUser(following=following, last_user_message_at=last_user_message_at)

    def user_wrote(self, openid: str, at: float | None = None) -> None:
        """The user sent a message: a new 48-hour window with a fresh quota."""
        user = self.users.setdefault(openid, FakeUser())
        user.last_user_message_at = self.clock() if at is None else at
        user.sent_in_window = 0

    def fail_next(
        self,
        n: int = 1,
        *,
        errcode: int | None = None,
        http_status: int | None = None,
        path: str | None = None,
    ) -> None:
        """The next `n` calls (to `path`, or to any endpoint but stable_token) fail this way."""
        if (errcode is None) == (http_status is None):
            raise ValueError("give exactly one of errcode or http_status")
        self._failures.append(_Failure(n, errcode, http_status, path))

    def rotate_token(self) -> None:
        """Someone else force-refreshed (another tool, the admin console): our token is now 40001."""
        self._tokens = []
        self._issue(self.clock())

    def calls(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def stable_token_calls(self) -> int:
        return len(self.calls("/cgi-bin/stable_token"))

    @property
    def current_token(self) -> str | None:
        return self._tokens[-1].value if self._tokens else None

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _error(errcode: int) -> web.Response:
        rid = secrets.token_hex(4)
        return web.json_response({"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'error')} rid: {rid}"})

    async def _record(self, request: web.Request) -> Any:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.query), body))
        return body

    def _injected(self, path: str) -> web.Response | None:
        for failure in self._failures:
            applies = failure.path == path if failure.path else path != "/cgi-bin/stable_token"
            if applies and failure.remaining > 0:
                failure.remaining -= 1
                if failure.http_status is not None:
                    return web.Response(status=failure.http_status, text="Internal Server Error")
                assert failure.errcode is not None
                return self._error(failure.errcode)
        return None

    def _check_token(self, request: web.Request) -> web.Response | None:
        value = request.query.get("access_token")
        if not value:
            return self._error(41001)
        now = self.clock()
        for token in self._tokens:
            if token.value == value:
                return None if token.expires_at > now else self._error(42001)
        return self._error(40001)

    def _issue(self, now: float) -> _Token:
        token = _Token(f"ACCESS_TOKEN_{secrets.token_hex(8)}", now + self.expires_in)
        self._tokens = [t for t in self._tokens if t.expires_at > now] + [token]
        return token

    # -- endpoints -----------------------------------------------------------------------------

    async def _stable_token(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if injected := self._injected(request.path):
            return injected
        if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
            return self._error(47001)
        if body.get("appid") != self.app_id:
            return self._error(40013)
        if body.get("secret") != self.app_secret:
            return self._error(40125)
        now = self.clock()
        current = self._tokens[-1] if self._tokens else None
        if body.get("force_refresh") is True:
            if current and self._last_force is not None and now - self._last_force < self.force_min_interval:
                token = current  # WeChat silently declines forced refreshes closer than 30 s apart
            else:
                self._last_force = now
                self._tokens = []  # forced: the previous token stops working at once
                token = self._issue(now)
        elif current and current.expires_at - now > self.renew_before:
            token = current
        else:
            token = self._issue(now)  # the old one keeps working until it expires
        return web.json_response({"access_token": token.value, "expires_in": int(token.expires_at - now)})

    async def _custom_send(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if failure := self._injected(request.path) or self._check_token(request):
            return failure
        if not isinstance(body, dict) or not isinstance(body.get("touser"), str):
            return self._error(47001)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "image", "voice", "video", "music", "news", "mpnews", "msgmenu", "wxcard"):
            return self._error(40008)
        if msgtype == "text":
            content = body.get("text", {}).get("content")
            if not isinstance(content, str):
                return self._error(47001)
            if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
                return self._error(45002)
        if msgtype == "news" and len(body.get("news", {}).get("articles", [])) != 1:
            return self._error(45008)
        user = self.users.get(body["touser"])
        if user is None:
            return self._error(40003)
        if not user.following:
            return self._error(43004)
        last = user.last_user_message_at
        if last is None or self.clock() - last > WINDOW_SECONDS:
            return self._error(45015)
        if user.sent_in_window >= WINDOW_QUOTA:
            return self._error(45047)
        user.sent_in_window += 1
        self.delivered.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _template_send(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if failure := self._injected(request.path) or self._check_token(request):
            return failure
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return self._error(47001)
        user = self.users.get(str(body.get("touser")))
        if user is None:
            return self._error(40003)
        if body.get("template_id") not in self.templates:
            return self._error(40037)
        if not user.following:
            return self._error(43004)
        self.delivered.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._msgids)})

    async def _media_get(self, request: web.Request) -> web.Response:
        await self._record(request)
        if failure := self._injected(request.path) or self._check_token(request):
            # The real API labels these JSON errors text/plain.
            return (
                web.Response(body=failure.body, content_type="text/plain")
                if failure.status == 200
                else failure
            )
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return web.Response(body=self._error(40007).body, content_type="text/plain")
        data, content_type, filename = found
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


# -- the platform's side of callbacks ---------------------------------------------------------------


@dataclass
class WeChatCallbackSigner:
    """Builds callback requests as WeChat sends them: query string signed with the token, body in
    clear (plaintext mode) or wrapped in an `Encrypt` envelope signed by `msg_signature` (safe and
    compatible modes). Also opens the gateway's encrypted passive replies."""

    token: str
    mode: str = "plaintext"
    encoding_aes_key: str = ""
    app_id: str = ""
    official_account: str = "gh_test000001"
    clock: Callable[[], float] = time.time

    def _crypto(self) -> WeChatMessageCrypto:
        return WeChatMessageCrypto(self.encoding_aes_key, self.app_id)

    def sign(
        self, xml: str | bytes, *, timestamp: float | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        ts = str(int(self.clock() if timestamp is None else timestamp))
        nonce = nonce or secrets.token_hex(6)
        body = xml.encode("utf-8") if isinstance(xml, str) else xml
        query = {"timestamp": ts, "nonce": nonce, "signature": plain_signature(self.token, ts, nonce)}
        if self.mode != "plaintext":
            encrypt = self._crypto().encrypt(body)
            body = (
                f"<xml><ToUserName><![CDATA[{self.official_account}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            ).encode()
            query["encrypt_type"] = "aes"
            query["msg_signature"] = msg_signature(self.token, ts, nonce, encrypt)
        return query, body

    def echo_query(self, echostr: str) -> dict[str, str]:
        ts, nonce = str(int(self.clock())), secrets.token_hex(6)
        return {
            "timestamp": ts,
            "nonce": nonce,
            "signature": plain_signature(self.token, ts, nonce),
            "echostr": echostr,
        }

    def open_reply(self, body: str) -> dict[str, Any]:
        """The passive reply's fields; in safe mode its signature is checked and it is decrypted."""
        fields = parse_xml_fields(body.encode())
        if "Encrypt" not in fields:
            return fields
        expected = msg_signature(self.token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
        if expected != fields["MsgSignature"]:
            raise AssertionError("passive reply signature does not verify")
        return parse_xml_fields(self._crypto().decrypt(fields["Encrypt"]))

    def text(self, openid: str, content: str, *, msg_id: int | str, create_time: float | None = None) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.official_account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(self.clock() if create_time is None else create_time)}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId></xml>"
        )

    def event(self, openid: str, event: str, *, key: str | None = None, extra: str = "") -> str:
        key_xml = f"<EventKey><![CDATA[{key}]]></EventKey>" if key is not None else ""
        return (
            f"<xml><ToUserName><![CDATA[{self.official_account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(self.clock())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{key_xml}{extra}</xml>"
        )
