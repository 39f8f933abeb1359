"""Mapping classified updates to InboundMessages: customers' commands, buttons, media and the staff group."""

from __future__ import annotations

from typing import Any

from channels.telegram.inbound import parse_button, to_inbound
from channels.telegram.updates import classify_update
from ticket_core.messages import InboundMessage

STAFF = -100777


def _msg(
    text: str | None = None, *, chat: int = 42, chat_type: str = "private", **extra: Any
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 5,
        "date": 1,
        "chat": {"id": chat, "type": chat_type},
        "from": {"id": 42, "is_bot": False, "first_name": "Mei", "language_code": "zh-hans"},
    }
    if text is not None:
        message["text"] = text
    message.update(extra)
    return {"update_id": 9, "message": message}


def _map(update: dict[str, Any]) -> InboundMessage | str:
    return to_inbound(classify_update(update, bot="support"), bot="support", staff_chat_id=STAFF)


def test_customer_commands_become_dialog_actions() -> None:
    for text, action in (("/start", "welcome"), ("/status", "check_status"), ("/human now", "human")):
        msg = _map(_msg(text))
        assert isinstance(msg, InboundMessage)
        assert (msg.kind, msg.fields["action"]) == ("action", action)
    other = _map(_msg("/unknown thing"))
    assert isinstance(other, InboundMessage) and other.kind == "text"


def test_text_message_identity_keys_and_locale() -> None:
    msg = _map(_msg("打印机卡纸"))
    assert isinstance(msg, InboundMessage)
    assert msg.dedup_key == "telegram:support:9"
    assert msg.conversation_key == "telegram:support:42"
    assert msg.identity.key == "telegram:support:42" and msg.locale == "zh-CN"
    assert msg.meta["reply_to"] == "42"


def test_buttons_parse_to_actions() -> None:
    assert parse_button("pick:en-router-reset") == ("pick", "en-router-reset", "")
    assert parse_button("solved:no") == ("solved", "no", "")
    assert parse_button("human") == ("human", "", "")
    assert parse_button("csat:4:T-000012") == ("csat", "4", "T-000012")
    assert parse_button("top:printer") == ("top_articles", "printer", "")
    assert parse_button("rm -rf") is None


def test_media_location_and_other_groups() -> None:
    photo = _map(
        _msg(caption="red light", photo=[{"file_id": "f1", "file_unique_id": "u", "width": 1, "height": 1}])
    )
    assert isinstance(photo, InboundMessage) and photo.kind == "image"
    assert photo.text == "red light" and photo.meta["telegram_file"]["file_id"] == "f1"
    loc = _map(_msg(location={"latitude": 1.5, "longitude": 2.5}))
    assert isinstance(loc, InboundMessage) and loc.kind == "location" and loc.fields["longitude"] == "2.5"
    group = _map(_msg("hi", chat=-5, chat_type="group"))
    assert isinstance(group, str) and "staff group" in group


def test_staff_group_messages_are_staff_kind_per_topic() -> None:
    update = _msg(
        "/status solved", chat=STAFF, chat_type="supergroup", message_thread_id=77, is_topic_message=True
    )
    msg = _map(update)
    assert isinstance(msg, InboundMessage) and msg.kind == "staff"
    assert msg.fields["command"] == "status" and msg.fields["args"] == "solved"
    assert msg.conversation_key == f"telegram:support:staff:{STAFF}:77"
    bot = _msg("echo", chat=STAFF, chat_type="supergroup")
    bot["message"]["from"]["is_bot"] = True
    assert isinstance(_map(bot), str)
