"""Turn a classified Telegram update into the normalised `InboundMessage` (docs/architecture.md).

Customers talk to the bot in private chats; the configured staff supergroup is the agents' desk, so
everything said there becomes kind "staff" for the relay. Other groups are not support conversations.
Commands and inline-keyboard answers become the shared dialog actions; files are only described here
(`meta["telegram_file"]`) and fetched later, off the webhook's answer path.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from channels.telegram.updates import TelegramUpdate
from ticket_core.messages import CustomerIdentity, InboundMessage

CHANNEL = "telegram"

# Customer commands -> dialog actions. Anything else starting with "/" is kept as ordinary text.
COMMAND_ACTIONS = {"start": "welcome", "help": "welcome", "status": "check_status", "human": "human"}

# Callback data "<action>[:<value>[:<ticket>]]" for the actions of the message conventions.
BUTTON_ACTIONS = frozenset(
    {"welcome", "start_report", "check_status", "top_articles", "human", "pick", "solved", "csat"}
)

# Our media kinds (InboundMessage.kind) per Telegram content type.
MEDIA_KINDS = {
    "photo": "image",
    "sticker": "image",
    "document": "file",
    "audio": "file",
    "animation": "video",
    "video": "video",
    "video_note": "video",
    "voice": "voice",
}


def dedup_key(bot: str, update: TelegramUpdate) -> str:
    return f"{CHANNEL}:{update.dedup_key}"  # update.dedup_key is "<bot>:<update_id>"


def to_inbound(
    update: TelegramUpdate, *, bot: str, staff_chat_id: int, raw: dict[str, Any] | None = None
) -> InboundMessage | str:
    """The message to publish, or the reason the update is ignored."""
    if update.ignore_reason is not None:
        return update.ignore_reason
    if update.user_id is None or update.chat_id is None:
        return "update without a sender or chat"
    if update.user_is_bot:
        return "messages from bots are not support conversations"
    if staff_chat_id and update.chat_id == staff_chat_id:
        return _staff(update, bot, raw)
    if not update.is_private:
        return f"{update.chat_type} chats other than the staff group are not support conversations"
    return _customer(update, bot, raw)


# Short forms that fit Telegram's 64-byte callback_data better.
BUTTON_ALIASES = {"top": "top_articles"}


def parse_button(data: str) -> tuple[str, str, str] | None:
    """ "csat:4:T-000012" -> ("csat", "4", "T-000012"); None for data that is not one of our actions."""
    action, _, rest = data.partition(":")
    action = BUTTON_ALIASES.get(action, action)
    if action not in BUTTON_ACTIONS:
        return None
    value, _, ticket = rest.partition(":")
    if action == "csat":
        return action, value, ticket
    return action, rest, ""


def _identity(update: TelegramUpdate, bot: str) -> CustomerIdentity:
    return CustomerIdentity(
        CHANNEL,
        bot,
        str(update.user_id),
        display_name=update.display_name or update.username,
    )


def _meta(update: TelegramUpdate, raw: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "reply_to": str(update.chat_id),
        "update_id": update.update_id,
        "chat_id": update.chat_id,
        "chat_type": update.chat_type,
        "user_id": update.user_id,
        "username": update.username,
        "message_id": update.message_id,
        "message_thread_id": update.message_thread_id,
        "is_topic_message": update.is_topic_message,
        "reply_to_message_id": update.reply_to_message_id,
        "callback_query_id": update.callback_query_id,
    }
    if update.media is not None:
        meta["telegram_file"] = asdict(update.media)
    if update.media_group_id:
        meta["media_group_id"] = update.media_group_id
    if raw is not None:
        meta["raw"] = raw
    return {k: v for k, v in meta.items() if v is not None}


def _external_id(update: TelegramUpdate) -> str:
    if update.callback_query_id is not None:
        return f"callback:{update.callback_query_id}"
    return f"{update.chat_id}:{update.message_id}"


def _customer(update: TelegramUpdate, bot: str, raw: dict[str, Any] | None) -> InboundMessage | str:
    kind = "text"
    text = update.text or ""
    fields: dict[str, str] = {}
    if update.kind == "callback_query":
        parsed = parse_button(update.callback_data or "")
        if parsed is None:
            return f"unknown button data {update.callback_data!r}"
        action, value, ticket = parsed
        kind, fields = "action", {"action": action, "value": value}
        if ticket:
            fields["ticket"] = ticket
    elif update.kind == "edited_message":
        kind = "edit"
        fields["edited_message_id"] = str(update.message_id)
    elif update.command is not None and update.command in COMMAND_ACTIONS:
        kind = "action"
        fields = {"action": COMMAND_ACTIONS[update.command], "value": update.command_text}
    elif update.content_type == "location" and update.location is not None:
        loc = update.location
        kind = "location"
        fields = {"latitude": str(loc.latitude), "longitude": str(loc.longitude)}
        label = ", ".join(p for p in (loc.title, loc.address) if p)
        text = text or f"📍 {label + ' ' if label else ''}({loc.latitude:.5f}, {loc.longitude:.5f})"
    elif update.content_type == "contact":
        text = text or f"📞 {update.contact_phone}"
    elif update.content_type in MEDIA_KINDS:
        kind = MEDIA_KINDS[update.content_type]
    identity = _identity(update, bot)
    if update.content_type == "contact" and update.contact_phone:
        identity = CustomerIdentity(
            identity.channel,
            identity.account,
            identity.external_id,
            display_name=identity.display_name,
            phone=update.contact_phone,
        )
    return InboundMessage(
        channel=CHANNEL,
        account=bot,
        external_id=_external_id(update),
        dedup_key=dedup_key(bot, update),
        identity=identity,
        conversation_key=f"{CHANNEL}:{bot}:{update.chat_id}",
        kind=kind,
        text=text,
        fields=fields,
        locale=update.locale,
        meta=_meta(update, raw),
    )


def _staff(update: TelegramUpdate, bot: str, raw: dict[str, Any] | None) -> InboundMessage:
    fields: dict[str, str] = {}
    if update.command is not None:
        fields = {"command": update.command, "args": update.command_text}
    if update.callback_data is not None:
        fields["callback"] = update.callback_data
    if update.media is not None:
        fields["media"] = update.media.kind
    # One topic (or the whole group, without topics) is one ordered conversation.
    conversation = f"{CHANNEL}:{bot}:staff:{update.chat_id}"
    if update.message_thread_id is not None and (update.is_topic_message or update.kind == "callback_query"):
        conversation += f":{update.message_thread_id}"
    return InboundMessage(
        channel=CHANNEL,
        account=bot,
        external_id=_external_id(update),
        dedup_key=dedup_key(bot, update),
        identity=_identity(update, bot),
        conversation_key=conversation,
        kind="staff",
        text=update.text or "",
        fields=fields,
        locale=update.locale,
        meta=_meta(update, raw),
    )
