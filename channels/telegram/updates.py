"""Classify raw Bot API `Update` objects into one flat, typed record.

The webhook route and the poller store every update before answering; this module decides what the
update is and whether it is of any use, without ever raising on a well-formed JSON object: anything
unusable gets an `ignore_reason` so that it can be recorded as explicitly ignored. Only input that is
not an update at all (not an object, no integer `update_id`) raises `InvalidInput`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from ticket_core.errors import InvalidInput

# Every optional field of `Update` in Bot API 10.1, in the order the API documents them. At most one is
# present; its name is the update's kind.
UPDATE_KINDS: tuple[str, ...] = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "guest_message",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "managed_bot",
)

# The kinds a support conversation is built from; everything else is recorded as ignored.
USEFUL_KINDS = frozenset({"message", "edited_message", "callback_query"})

_MESSAGE_KINDS = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
        "guest_message",
    }
)

# Media we can download and attach, in the order we look for them (a message carries at most one).
_MEDIA_FIELDS: tuple[str, ...] = (
    "photo",
    "document",
    "video",
    "audio",
    "voice",
    "video_note",
    "animation",
    "sticker",
)

# Service messages: they describe something that happened in the chat, nobody wrote them to us.
_SERVICE_FIELDS: tuple[str, ...] = (
    "new_chat_members",
    "left_chat_member",
    "chat_owner_left",
    "chat_owner_changed",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "gift",
    "unique_gift",
    "gift_upgrade_sent",
    "connected_website",
    "write_access_allowed",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "checklist_tasks_done",
    "checklist_tasks_added",
    "direct_message_price_changed",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway_completed",
    "giveaway_winners",
    "managed_bot_created",
    "paid_message_price_changed",
    "poll_option_added",
    "poll_option_deleted",
    "suggested_post_approved",
    "suggested_post_approval_failed",
    "suggested_post_declined",
    "suggested_post_paid",
    "suggested_post_refunded",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
)

# Content a person sent that we cannot use (we name it in the ignore reason).
_UNSUPPORTED_CONTENT: tuple[str, ...] = (
    "story",
    "dice",
    "game",
    "poll",
    "checklist",
    "invoice",
    "paid_media",
    "live_photo",
    "giveaway",
    "passport_data",
    "rich_message",
)

# Bot commands are 1-32 of [A-Za-z0-9_]; we accept up to 64 so a long command is reported, not lost.
_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")


class _Malformed(Exception):
    """A field exists but has a type the Bot API never sends: the update is ignored with this reason."""


@dataclass(frozen=True)
class TelegramFile:
    """A downloadable file carried by a message (for photos: the largest size)."""

    kind: str  # photo, document, video, audio, voice, video_note, animation, sticker
    file_id: str
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class TelegramLocation:
    latitude: float
    longitude: float
    title: str | None = None  # set for venues
    address: str | None = None


@dataclass(frozen=True)
class TelegramUpdate:
    """One update, flattened. Fields that do not apply to the update's kind are None/empty."""

    update_id: int
    kind: str  # an UPDATE_KINDS member, or "unknown"
    dedup_key: str  # f"{bot}:{update_id}": unique per bot, repeats of one delivery share it
    ignore_reason: str | None = None  # None: store and process; otherwise why it is of no use
    chat_id: int | None = None
    chat_type: str | None = None  # private, group, supergroup, channel
    chat_title: str | None = None
    chat_is_forum: bool = False
    user_id: int | None = None
    username: str | None = None
    display_name: str | None = None
    language_code: str | None = None
    locale: str | None = None  # "zh-CN" or "en"; None when the client sent no language
    user_is_bot: bool = False
    message_id: int | None = None
    date: int | None = None
    edit_date: int | None = None
    content_type: str | None = None  # text, photo, document, ..., location, contact, service, <unsupported>
    text: str | None = None  # the text, or the caption of a media message
    command: str | None = None  # lower-cased, without "/" and "@bot"; None when addressed to another bot
    command_bot: str | None = None  # the "@bot" suffix as written, without "@"
    command_args: tuple[str, ...] = ()
    command_text: str = ""  # everything after the command, whitespace-trimmed (for /note, /kb ...)
    media: TelegramFile | None = None
    media_group_id: str | None = None  # albums arrive as one update per item sharing this id
    location: TelegramLocation | None = None
    contact_phone: str | None = None
    message_thread_id: int | None = None
    is_topic_message: bool = False
    reply_to_message_id: int | None = None  # None when not a reply (forum-topic rule applied)
    callback_query_id: str | None = None
    callback_data: str | None = None

    @property
    def is_private(self) -> bool:
        return self.chat_type == "private"

    @property
    def is_group(self) -> bool:
        return self.chat_type in ("group", "supergroup")

    @property
    def photo_file_id(self) -> str | None:
        return self.media.file_id if self.media and self.media.kind == "photo" else None

    @property
    def document_file_id(self) -> str | None:
        return self.media.file_id if self.media and self.media.kind == "document" else None

    @property
    def conversation_key(self) -> str | None:
        """Messages with one key must be handled in order: a chat, or one forum topic of a chat."""
        if self.chat_id is None:
            return None
        # dedup_key starts with the bot name; reuse it so both keys agree on the bot.
        bot = self.dedup_key.rsplit(":", 1)[0]
        if self.is_topic_message and self.message_thread_id is not None:
            return f"{bot}:{self.chat_id}:{self.message_thread_id}"
        return f"{bot}:{self.chat_id}"


def locale_for(language_code: str | None) -> str | None:
    """Map a Telegram IETF language tag to one of our two locales."""
    if not language_code:
        return None
    return "zh-CN" if language_code.lower().startswith("zh") else "en"


def parse_command(
    text: str | None, bot_username: str | None = None
) -> tuple[str | None, str | None, tuple[str, ...], str]:
    """Split "/assign@OmniBot @alice" into ("assign", "OmniBot", ("@alice",), "@alice").

    A command suffixed with another bot's name is not ours (groups share commands between bots), so
    the command comes back as None; without a known `bot_username` every suffix is accepted.
    """
    if not text:
        return None, None, (), ""
    match = _COMMAND_RE.match(text)
    if match is None:
        return None, None, (), ""
    name, target = match.group(1), match.group(2)
    rest = text[match.end() :].strip()
    if target and bot_username and target.lower() != bot_username.lstrip("@").lower():
        return None, target, (), rest
    return name.lower(), target, tuple(rest.split()), rest


def classify_update(update: Any, *, bot: str = "default", bot_username: str | None = None) -> TelegramUpdate:
    """Classify one decoded update. `bot` is our configured bot name (it scopes `dedup_key`)."""
    if not isinstance(update, Mapping):
        raise InvalidInput("a Telegram update must be a JSON object", code="invalid_update")
    update_id = update.get("update_id")
    if not _is_int(update_id):
        raise InvalidInput(
            "a Telegram update needs an integer update_id",
            code="invalid_update",
            fields={"update_id": "required"},
        )
    kind = next((k for k in UPDATE_KINDS if k in update), "unknown")
    base = TelegramUpdate(update_id=update_id, kind=kind, dedup_key=f"{bot}:{update_id}")
    payload = update.get(kind)
    if kind == "unknown":
        extra = sorted(k for k in update if k != "update_id")
        return _replace(base, ignore_reason=f"unknown update kind ({', '.join(extra) or 'empty'})")
    if not isinstance(payload, Mapping):
        return _replace(base, ignore_reason=f"malformed {kind}: not an object")
    try:
        if kind in _MESSAGE_KINDS:
            return _classify_message(base, payload, bot_username)
        if kind == "callback_query":
            return _classify_callback(base, payload)
        return _classify_other(base, payload)
    except _Malformed as exc:
        return _replace(base, ignore_reason=f"malformed {kind}: {exc}")


# -- per kind --------------------------------------------------------------------------------------


def _classify_message(
    base: TelegramUpdate, msg: Mapping[str, Any], bot_username: str | None
) -> TelegramUpdate:
    fields: dict[str, Any] = {}
    fields.update(_chat_fields(_req_obj(msg, "chat")))
    fields.update(_user_fields(_obj(msg, "from")))
    fields["message_id"] = _req_int(msg, "message_id")
    fields["date"] = _int(msg, "date")
    fields["edit_date"] = _int(msg, "edit_date")
    fields["media_group_id"] = _str(msg, "media_group_id")

    thread_id = _int(msg, "message_thread_id")
    is_topic = _bool(msg, "is_topic_message")
    fields["message_thread_id"] = thread_id
    fields["is_topic_message"] = is_topic
    fields["reply_to_message_id"] = _reply_target(msg, thread_id, is_topic)

    text = _str(msg, "text")
    caption = _str(msg, "caption")
    body = text if text is not None else caption
    fields["text"] = body
    command, command_bot, args, rest = parse_command(body, bot_username)
    fields.update(command=command, command_bot=command_bot, command_args=args, command_text=rest)

    content_type, media, location, phone = _content(msg)
    fields.update(content_type=content_type, media=media, location=location, contact_phone=phone)
    result = _replace(base, **fields)

    if base.kind in ("channel_post", "edited_channel_post"):
        return _replace(result, ignore_reason="channel posts are broadcasts, not support conversations")
    if base.kind not in USEFUL_KINDS:
        return _replace(result, ignore_reason=f"{base.kind} updates are not used")
    if content_type == "service":
        service = next(k for k in _SERVICE_FIELDS if k in msg)
        return _replace(result, ignore_reason=f"service message ({service})")
    if content_type is None:
        return _replace(result, ignore_reason="message without content")
    if content_type in _UNSUPPORTED_CONTENT:
        return _replace(result, ignore_reason=f"unsupported content ({content_type})")
    return result


def _classify_callback(base: TelegramUpdate, query: Mapping[str, Any]) -> TelegramUpdate:
    fields: dict[str, Any] = {"content_type": "callback"}
    fields["callback_query_id"] = _req_str(query, "id")
    fields["callback_data"] = _str(query, "data")
    fields.update(_user_fields(_req_obj(query, "from")))
    # `message` may be an InaccessibleMessage (date 0): it still names the chat and the message id.
    message = _obj(query, "message")
    if message is not None:
        fields.update(_chat_fields(_req_obj(message, "chat")))
        fields["message_id"] = _int(message, "message_id")
        fields["message_thread_id"] = _int(message, "message_thread_id")
        fields["is_topic_message"] = _bool(message, "is_topic_message")
    result = _replace(base, **fields)
    if fields["callback_data"] is None:
        # Game buttons carry no data; nothing for us to act on, but the query still needs an answer.
        return _replace(result, ignore_reason="callback query without data")
    return result


def _classify_other(base: TelegramUpdate, payload: Mapping[str, Any]) -> TelegramUpdate:
    """Kinds we never act on: keep who/where for the record, and say why they are ignored."""
    fields: dict[str, Any] = {}
    chat = _obj(payload, "chat")
    if chat is not None:
        fields.update(_chat_fields(chat))
    user = _obj(payload, "from") or _obj(payload, "user")
    fields.update(_user_fields(user))
    fields["message_id"] = _int(payload, "message_id")
    fields["date"] = _int(payload, "date")
    kind = base.kind
    if kind in ("my_chat_member", "chat_member"):
        old = _status(payload, "old_chat_member")
        new = _status(payload, "new_chat_member")
        reason = f"chat member change ({old} -> {new})"
    elif kind in ("message_reaction", "message_reaction_count"):
        reason = "reactions are not support messages"
    elif kind in ("chat_boost", "removed_chat_boost"):
        reason = "chat boosts are not support messages"
    else:
        reason = f"{kind} updates are not used"
    return _replace(base, ignore_reason=reason, **fields)


# -- pieces ----------------------------------------------------------------------------------------


def _reply_target(msg: Mapping[str, Any], thread_id: int | None, is_topic: bool) -> int | None:
    reply = _obj(msg, "reply_to_message")
    if reply is None:
        return None
    reply_id = _int(reply, "message_id")
    # In a forum topic every message "replies" to the topic's creation message, whose id is the
    # thread id. Only there is that not a reply: in an ordinary supergroup `message_thread_id` names
    # the reply thread's root, and answering the root itself is a real reply (the relay without topics
    # depends on it), so the rule needs the topic flag or the creation message to be present.
    in_topic = is_topic or "forum_topic_created" in reply
    if in_topic and reply_id is not None and reply_id == thread_id:
        return None
    return reply_id


def _content(
    msg: Mapping[str, Any],
) -> tuple[str | None, TelegramFile | None, TelegramLocation | None, str | None]:
    for name in _MEDIA_FIELDS:
        if name in msg:
            return name, _media(msg, name), None, None
    if "venue" in msg or "location" in msg:
        return "location", None, _location(msg), None
    if "contact" in msg:
        contact = _req_obj(msg, "contact")
        return "contact", None, None, _req_str(contact, "phone_number")
    if "text" in msg:
        return "text", None, None, None
    if any(k in msg for k in _SERVICE_FIELDS):
        return "service", None, None, None
    for name in _UNSUPPORTED_CONTENT:
        if name in msg:
            return name, None, None, None
    return None, None, None, None


def _media(msg: Mapping[str, Any], name: str) -> TelegramFile:
    if name == "photo":
        sizes = msg["photo"]
        if not isinstance(sizes, list) or not sizes or not all(isinstance(s, Mapping) for s in sizes):
            raise _Malformed("photo is not a non-empty array of PhotoSize")
        # Sizes come smallest first, but nothing promises it: pick by pixels, then bytes.
        best = max(sizes, key=lambda s: (_area(s), _int(s, "file_size") or 0))
    else:
        best = _req_obj(msg, name)
    return TelegramFile(
        kind=name,
        file_id=_req_str(best, "file_id"),
        file_unique_id=_str(best, "file_unique_id"),
        file_name=_str(best, "file_name"),
        mime_type=_str(best, "mime_type"),
        file_size=_int(best, "file_size"),
        width=_int(best, "width"),
        height=_int(best, "height"),
    )


def _area(size: Mapping[str, Any]) -> int:
    return (_int(size, "width") or 0) * (_int(size, "height") or 0)


def _location(msg: Mapping[str, Any]) -> TelegramLocation:
    venue = _obj(msg, "venue")
    loc = _obj(venue, "location") if venue is not None else None
    if loc is None:
        loc = _req_obj(msg, "location")
    return TelegramLocation(
        latitude=_req_float(loc, "latitude"),
        longitude=_req_float(loc, "longitude"),
        title=_str(venue, "title") if venue is not None else None,
        address=_str(venue, "address") if venue is not None else None,
    )


def _chat_fields(chat: Mapping[str, Any]) -> dict[str, Any]:
    title = _str(chat, "title")
    if title is None:
        title = _full_name(chat)
    return {
        "chat_id": _req_int(chat, "id"),
        "chat_type": _req_str(chat, "type"),
        "chat_title": title,
        "chat_is_forum": _bool(chat, "is_forum"),
    }


def _user_fields(user: Mapping[str, Any] | None) -> dict[str, Any]:
    if user is None:
        return {}
    language = _str(user, "language_code")
    username = _str(user, "username")
    return {
        "user_id": _req_int(user, "id"),
        "username": username,
        "display_name": _full_name(user) or username,
        "language_code": language,
        "locale": locale_for(language),
        "user_is_bot": _bool(user, "is_bot"),
    }


def _full_name(obj: Mapping[str, Any]) -> str | None:
    parts = [p for p in (_str(obj, "first_name"), _str(obj, "last_name")) if p]
    return " ".join(parts) or None


def _status(payload: Mapping[str, Any], key: str) -> str:
    member = _obj(payload, key)
    return (_str(member, "status") if member is not None else None) or "?"


def _replace(base: TelegramUpdate, **changes: Any) -> TelegramUpdate:
    return dataclasses.replace(base, **changes)


# -- typed field access: the Bot API's types, checked where a wrong one would mislead us ----------


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(obj: Mapping[str, Any] | None, key: str) -> int | None:
    if obj is None:
        return None
    value = obj.get(key)
    if value is None:
        return None
    if not _is_int(value):
        raise _Malformed(f"{key} is not an integer")
    return int(value)


def _req_int(obj: Mapping[str, Any], key: str) -> int:
    value = _int(obj, key)
    if value is None:
        raise _Malformed(f"{key} is missing")
    return value


def _str(obj: Mapping[str, Any] | None, key: str) -> str | None:
    if obj is None:
        return None
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{key} is not a string")
    return value


def _req_str(obj: Mapping[str, Any], key: str) -> str:
    value = _str(obj, key)
    if value is None:
        raise _Malformed(f"{key} is missing")
    return value


def _bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Malformed(f"{key} is not a boolean")
    return value


def _req_float(obj: Mapping[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed(f"{key} is not a number")
    return float(value)


def _obj(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if obj is None:
        return None
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Malformed(f"{key} is not an object")
    return value


def _req_obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _obj(obj, key)
    if value is None:
        raise _Malformed(f"{key} is missing")
    return value
