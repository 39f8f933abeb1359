"""WeChatApiClient against the fake WeChat API server on loopback."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.wechat.api_client import (
    AccessToken,
    InMemoryTokenStore,
    WeChatApiClient,
    map_wechat_error,
)
from channels.wechat.errors import (
    AccessTokenRejected,
    CredentialsRejected,
    CustomerServiceWindowClosed,
    TemplateRejected,
    UserNotFollowing,
)
from channels.wechat.replies import Article
from tests.fakes.wechat_api import FakeWeChatApi
from ticket_core.errors import ChannelError, ChannelUnavailable, PermanentDeliveryError, RateLimited

T0 = 1_700_000_000.0
HOUR = 3600.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Secret:
    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(clock: Clock) -> AsyncIterator[FakeWeChatApi]:
    async with FakeWeChatApi(clock=clock, expires_in=7200) as fake:
        fake.set_user("o_follower", last_user_message_at=clock())
        fake.set_user("o_gone", following=False, last_user_message_at=clock())
        fake.media["MEDIA_1"] = (b"\x89PNG\r\n\x1a\nfake", "image/png", "photo.png")
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_client(
    api: FakeWeChatApi,
    session: aiohttp.ClientSession,
    clock: Clock,
    store: InMemoryTokenStore | None = None,
    *,
    refresh_margin: float = 180.0,
    secret: str | None = None,
) -> WeChatApiClient:
    return WeChatApiClient(
        api_base_url=api.base_url,
        app_id=api.app_id,
        app_secret=Secret(secret or api.app_secret),
        session=session,
        token_store=store or InMemoryTokenStore(clock=clock),
        clock=clock,
        refresh_margin=refresh_margin,
    )


# -- tokens ----------------------------------------------------------------------------------------


async def test_token_is_fetched_once_and_reused(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    for _ in range(3):
        await client.send_custom_text("o_follower", "您好")
    assert api.stable_token_calls == 1
    req = api.calls("/cgi-bin/stable_token")[0].json
    assert req == {
        "grant_type": "client_credential",
        "appid": api.app_id,
        "secret": api.app_secret,
        "force_refresh": False,
    }
    sends = api.calls("/cgi-bin/message/custom/send")
    assert {r.query["access_token"] for r in sends} == {api.current_token}
    assert sends[0].json == {"touser": "o_follower", "msgtype": "text", "text": {"content": "您好"}}


async def test_refreshes_before_expiry(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    first = await client.stable_token()
    clock.t += 7200 - 150  # still valid, but inside the refresh margin and the platform's 5-minute overlap
    second = await client.stable_token()
    assert second != first and api.stable_token_calls == 2
    clock.t += 100
    assert await client.stable_token() == second and api.stable_token_calls == 2


async def test_refreshes_once_on_40001_and_retries(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    await client.send_custom_text("o_follower", "one")
    old = api.current_token
    api.fail_next(1, errcode=40001, path="/cgi-bin/message/custom/send")
    await client.send_custom_text("o_follower", "two")
    sends = api.calls("/cgi-bin/message/custom/send")
    assert len(sends) == 3 and sends[1].query["access_token"] == old
    assert sends[2].query["access_token"] == api.current_token != old
    # Normal mode handed back the refused token, so the client forced a refresh exactly once.
    assert [r.json["force_refresh"] for r in api.calls("/cgi-bin/stable_token")] == [False, False, True]
    assert [d["text"]["content"] for d in api.delivered] == ["one", "two"]


async def test_token_rotated_elsewhere_is_picked_up_without_forcing(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    await client.send_custom_text("o_follower", "one")
    api.rotate_token()
    await client.send_custom_text("o_follower", "two")
    assert [r.json["force_refresh"] for r in api.calls("/cgi-bin/stable_token")] == [False, False]


async def test_expired_token_42001_also_refreshes(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    store_token = await client.stable_token()
    api.fail_next(1, errcode=42001, path="/cgi-bin/message/template/send")
    assert await client.send_template("o_follower", "TPL_STATUS", {"k": "v"}) > 0
    assert store_token != api.current_token


async def test_second_rejection_is_surfaced_not_looped(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    api.fail_next(5, errcode=40001, path="/cgi-bin/message/custom/send")
    with pytest.raises(AccessTokenRejected) as info:
        await client.send_custom_text("o_follower", "x")
    assert info.value.retryable and info.value.platform_code == 40001
    assert len(api.calls("/cgi-bin/message/custom/send")) == 2


async def test_two_clients_sharing_a_store_make_one_call_per_expiry(
    session: aiohttp.ClientSession, clock: Clock
) -> None:
    async with FakeWeChatApi(clock=clock, expires_in=60, renew_before=30) as api:
        api.set_user("o_follower", last_user_message_at=clock())
        store = InMemoryTokenStore(clock=clock)  # stands in for the shared MongoDB document
        a = make_client(api, session, clock, store, refresh_margin=20)
        b = make_client(api, session, clock, store, refresh_margin=20)
        for period in range(1, 4):
            sends = [
                c.send_template("o_follower", "TPL_STATUS", {"n": str(i)}) for i in range(10) for c in (a, b)
            ]
            await asyncio.gather(*sends)
            assert api.stable_token_calls == period
            tokens = {r.query["access_token"] for r in api.calls("/cgi-bin/message/template/send")[-20:]}
            assert tokens == {api.current_token}
            clock.t += 45  # into the refresh margin of the current token
        assert len(api.delivered) == 60


async def test_separate_stores_would_each_fetch(session: aiohttp.ClientSession, clock: Clock) -> None:
    # The contrast that motivates the shared store: without it every process fetches on its own.
    async with FakeWeChatApi(clock=clock) as api:
        await make_client(api, session, clock).stable_token()
        await make_client(api, session, clock).stable_token()
        assert api.stable_token_calls == 2


async def test_lease_holder_is_waited_for(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    store = InMemoryTokenStore(clock=clock)
    assert await store.acquire_lease(api.app_id, "other-process", 30)
    client = make_client(api, session, clock, store)
    waiter = asyncio.create_task(client.stable_token())
    await asyncio.sleep(0.2)
    assert not waiter.done() and api.stable_token_calls == 0
    await store.put(api.app_id, AccessToken("FROM_OTHER", clock() + 7200))
    await store.release_lease(api.app_id, "other-process")
    assert await waiter == "FROM_OTHER"
    assert api.stable_token_calls == 0


async def test_wrong_secret(api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock) -> None:
    client = make_client(api, session, clock, secret="wrong")
    with pytest.raises(CredentialsRejected) as info:
        await client.stable_token()
    assert info.value.platform_code == 40125 and not info.value.retryable


# -- messages and the real platform rules ------------------------------------------------------------


async def test_customer_service_window_and_quota(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    for i in range(5):
        await client.send_custom_text("o_follower", f"m{i}")
    with pytest.raises(CustomerServiceWindowClosed) as quota:
        await client.send_custom_text("o_follower", "sixth")
    assert quota.value.platform_code == 45047 and isinstance(quota.value, PermanentDeliveryError)

    api.user_wrote("o_follower")  # a new message opens a new window
    await client.send_custom_text("o_follower", "again")
    clock.t += 49 * HOUR
    with pytest.raises(CustomerServiceWindowClosed) as window:
        await client.send_custom_text("o_follower", "late")
    assert window.value.platform_code == 45015 and not window.value.retryable
    # Outside the window a template message still goes through.
    assert await client.send_template("o_follower", "TPL_STATUS", {"status": "已解决"}) > 0


async def test_unfollowed_user_and_bad_template(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    with pytest.raises(UserNotFollowing) as gone:
        await client.send_custom_text("o_gone", "hi")
    assert gone.value.platform_code == 43004 and not gone.value.retryable
    with pytest.raises(TemplateRejected) as bad:
        await client.send_template("o_follower", "NO_SUCH_TEMPLATE", {"k": "v"})
    assert bad.value.platform_code == 40037 and isinstance(bad.value, PermanentDeliveryError)


async def test_news_image_and_template_bodies(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    await client.send_custom_image("o_follower", "MEDIA_1")
    await client.send_custom_news(
        "o_follower", [Article("卡纸怎么办", "三步解决", "https://kb/1", "https://img/1")]
    )
    msgid = await client.send_template(
        "o_follower",
        "TPL_STATUS",
        {"number": "T-000123", "status": {"value": "已解决", "color": "#173177"}},
        url="https://support.example.com/t/T-000123",
        miniprogram={"appid": "wxmini", "pagepath": "pages/t?id=1"},
        client_msg_id="outbox-42",
    )
    image, news, template = (r.json for r in api.requests if r.path != "/cgi-bin/stable_token")
    assert image == {"touser": "o_follower", "msgtype": "image", "image": {"media_id": "MEDIA_1"}}
    assert news["news"]["articles"] == [
        {"title": "卡纸怎么办", "description": "三步解决", "url": "https://kb/1", "picurl": "https://img/1"}
    ]
    assert template["data"] == {
        "number": {"value": "T-000123"},
        "status": {"value": "已解决", "color": "#173177"},
    }
    assert template["miniprogram"]["pagepath"] == "pages/t?id=1" and template["client_msg_id"] == "outbox-42"
    assert isinstance(msgid, int)
    two = [Article("a", "b", "https://kb/a"), Article("c", "d", "https://kb/c")]
    with pytest.raises(PermanentDeliveryError) as info:
        await client.send_custom_news("o_follower", two)
    assert info.value.platform_code == 45008


@pytest.mark.parametrize(
    ("errcode", "http_status", "expected", "retryable"),
    [
        (45015, None, CustomerServiceWindowClosed, False),
        (45047, None, CustomerServiceWindowClosed, False),
        (43004, None, UserNotFollowing, False),
        (40037, None, TemplateRejected, False),
        (40003, None, PermanentDeliveryError, False),
        (45009, None, RateLimited, True),
        (-1, None, ChannelUnavailable, True),
        (None, 500, ChannelUnavailable, True),
        (None, 502, ChannelUnavailable, True),
        (61451, None, ChannelError, True),  # unknown codes stay retryable with their code
    ],
)
async def test_each_error_code_maps_to_a_typed_error(
    api: FakeWeChatApi,
    session: aiohttp.ClientSession,
    clock: Clock,
    errcode: int | None,
    http_status: int | None,
    expected: type[ChannelError],
    retryable: bool,
) -> None:
    client = make_client(api, session, clock)
    api.fail_next(1, errcode=errcode, http_status=http_status, path="/cgi-bin/message/template/send")
    with pytest.raises(expected) as info:
        await client.send_template("o_follower", "TPL_STATUS", {"k": "v"})
    assert info.value.retryable is retryable
    assert info.value.platform_code == (errcode if errcode is not None else http_status)
    if isinstance(info.value, RateLimited):
        assert 0 < info.value.retry_after <= 86400


def test_45009_waits_until_midnight_beijing_time() -> None:
    noon_beijing = 1_700_020_800.0  # 2023-11-15 04:00 UTC = 12:00 UTC+8
    error = map_wechat_error(http_status=200, payload={"errcode": 45009, "errmsg": "quota"}, now=noon_beijing)
    assert isinstance(error, RateLimited) and error.retry_after == 12 * HOUR
    limited = map_wechat_error(http_status=429, retry_after_header="7")
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    assert map_wechat_error(http_status=200, payload={"errcode": 0, "errmsg": "ok"}) is None
    assert isinstance(map_wechat_error(http_status=200, payload=["not", "an", "object"]), ChannelError)


async def test_unreachable_server_is_channel_unavailable(
    session: aiohttp.ClientSession, clock: Clock
) -> None:
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = WeChatApiClient(
        api_base_url=f"http://127.0.0.1:{port}",
        app_id="wx",
        app_secret=Secret("s"),
        session=session,
        token_store=InMemoryTokenStore(clock=clock),
        clock=clock,
    )
    with pytest.raises(ChannelUnavailable) as info:
        await client.send_custom_text("o", "x")
    assert info.value.retryable and isinstance(info.value, ConnectionError)


# -- media -----------------------------------------------------------------------------------------


async def test_download_media(api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock) -> None:
    client = make_client(api, session, clock)
    media = await client.download_media("MEDIA_1")
    assert (media.data, media.content_type, media.filename) == (
        b"\x89PNG\r\n\x1a\nfake",
        "image/png",
        "photo.png",
    )
    assert api.calls("/cgi-bin/media/get")[0].query["media_id"] == "MEDIA_1"
    with pytest.raises(PermanentDeliveryError) as info:
        await client.download_media("NOPE")
    assert info.value.platform_code == 40007


async def test_download_media_refreshes_on_40001_and_caps_size(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock
) -> None:
    client = make_client(api, session, clock)
    api.fail_next(1, errcode=40001, path="/cgi-bin/media/get")
    assert (await client.download_media("MEDIA_1")).content_type == "image/png"
    api.media["BIG"] = (b"x" * 5000, "audio/amr", "v.amr")
    small = WeChatApiClient(
        api_base_url=api.base_url,
        app_id=api.app_id,
        app_secret=Secret(api.app_secret),
        session=session,
        token_store=InMemoryTokenStore(clock=clock),
        clock=clock,
        max_media_bytes=1000,
    )
    with pytest.raises(PermanentDeliveryError):
        await small.download_media("BIG")


# -- secrets ---------------------------------------------------------------------------------------


async def test_secret_and_token_never_logged(
    api: FakeWeChatApi, session: aiohttp.ClientSession, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(api, session, clock)
    api.fail_next(1, errcode=40001, path="/cgi-bin/message/custom/send")
    await client.send_custom_text("o_follower", "x")
    api.fail_next(1, http_status=500, path="/cgi-bin/message/custom/send")
    with pytest.raises(ChannelUnavailable):
        await client.send_custom_text("o_follower", "y")
    text = caplog.text + repr(client) + repr(AccessToken("SECRET_TOKEN", 1.0))
    assert api.app_secret not in text and "SECRET_TOKEN" not in text
    for request in api.calls("/cgi-bin/stable_token"):
        assert request.json["secret"] not in text
    assert all(t not in text for t in {r.query.get("access_token", "") for r in api.requests} if t)
