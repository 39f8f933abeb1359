"""Driving the gateway as Telegram does: a configured bot pointed at the fake Bot API, webhook posts
with the secret, and lookups of what the bot sent."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from channels.settings import TelegramBot
from tests.fakes.telegram_api import FakeTelegramApi
from ticket_core.secret import Secret

SECRET = "webhook-secret-for-tests"
STAFF = -1001234567890
BOT = "support"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def bot_settings(tg: FakeTelegramApi, **changes: Any) -> TelegramBot:
    values: dict[str, Any] = {
        "name": BOT,
        "token": Secret(tg.token),
        "secret_token": Secret(SECRET),
        "base_url": tg.base_url,
        "staff_chat_id": STAFF,
    }
    values.update(changes)
    return TelegramBot(**values)


async def post_update(
    client: TestClient[Any, Any], update: dict[str, Any], *, secret: str | None = SECRET, bot: str = BOT
) -> tuple[int, Any]:
    headers = {HEADER: secret} if secret is not None else {}
    res = await client.post(f"/channels/telegram/{bot}", json=update, headers=headers)
    try:
        body = await res.json()
    except ValueError:
        body = await res.text()
    return res.status, body


def texts(tg: FakeTelegramApi, chat_id: int, thread: int | None = None) -> list[str]:
    """Texts the bot sent to a chat (or one forum topic of it), in order."""
    return [
        str(m.get("text") or m.get("caption") or "")
        for m in tg.sent_messages(chat_id)
        if thread is None or m.get("message_thread_id") == thread
    ]


def buttons(message: dict[str, Any]) -> list[str]:
    """The callback_data of an inline keyboard under a sent message."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [str(b.get("callback_data")) for row in rows for b in row if b.get("callback_data")]


def topics(tg: FakeTelegramApi, chat_id: int = STAFF) -> dict[int, dict[str, Any]]:
    chat = tg.chats.get(chat_id)
    return dict(chat.topics) if chat else {}
