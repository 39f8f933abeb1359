"""classify_update against the shared corpus of real updates and the machine-readable Bot API."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from channels.telegram import updates as tg_updates
from channels.telegram.updates import (
    UPDATE_KINDS,
    TelegramUpdate,
    classify_update,
    locale_for,
    parse_command,
)
from tests.conftest import CORPORA
from ticket_core.errors import InvalidInput

UPDATES_DIR = CORPORA / "telegram" / "updates"
SCHEMA_PATH = CORPORA / "telegram" / "bot_api_schema.json"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((UPDATES_DIR / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def fields_of(schema: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["types"][type_name]["fields"]}


# -- the corpus: every update is either stored or ignored with a reason -------------------------

# file -> (kind, None if stored else a fragment of the ignore reason)
CORPUS_EXPECTATIONS: dict[str, tuple[str, str | None]] = {
    "update_001.json": ("message", None),
    "update_002.json": ("message", "unsupported content (story)"),
    "update_003.json": ("message", None),
    "update_004.json": ("message", None),
    "update_005.json": ("message", "service message (pinned_message)"),
    "update_006.json": ("message", "unsupported content (dice)"),
    "update_007.json": ("unknown", "unknown update kind (new_update_kind)"),
    "update_008.json": ("my_chat_member", "chat member change (member -> kicked)"),
    "update_009.json": ("message_reaction", "reactions"),
    "update_010.json": ("message_reaction", "reactions"),
    "update_011.json": ("message_reaction_count", "reactions"),
    "update_012.json": ("chat_boost", "boosts"),
    "update_013.json": ("removed_chat_boost", "boosts"),
    "update_014.json": ("purchased_paid_media", "not used"),
}


def test_the_corpus_is_the_one_we_expect() -> None:
    assert sorted(p.name for p in UPDATES_DIR.glob("*.json")) == sorted(CORPUS_EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTATIONS))
def test_each_corpus_update_is_stored_or_ignored_with_reason(name: str) -> None:
    raw = load(name)
    result = classify_update(raw, bot="support")
    kind, reason = CORPUS_EXPECTATIONS[name]
    assert result.kind == kind
    assert result.update_id == raw["update_id"]
    assert result.dedup_key == f"support:{raw['update_id']}"
    if reason is None:
        assert result.ignore_reason is None
    else:
        assert result.ignore_reason is not None and reason in result.ignore_reason


def test_private_text_message_fields() -> None:
    u = classify_update(load("update_001.json"), bot="support")
    assert (u.chat_id, u.chat_type, u.is_private, u.is_group) == (218485655, "private", True, False)
    assert (u.user_id, u.username, u.display_name) == (218485655, "WaffleLapkin", "Waffle")
    assert (u.language_code, u.locale) == ("en", "en")
    assert (u.message_id, u.date, u.text, u.content_type) == (6557, 1569518342, "hello there", "text")
    assert u.command is None and u.command_args == ()
    assert u.reply_to_message_id is None and u.message_thread_id is None and not u.is_topic_message
    assert u.conversation_key == "support:218485655"


def test_supergroup_command_replying_to_a_thread_root_is_a_real_reply() -> None:
    # update_003: "/report" sent as a reply to message 134545 in an ordinary (non-forum) supergroup.
    # There message_thread_id names the reply thread's root, so this *is* a reply: the forum rule
    # applies only to forum topics (is_topic_message, or a reply to the topic-creation message).
    u = classify_update(load("update_003.json"), bot="support")
    assert (u.chat_type, u.is_group, u.chat_is_forum) == ("supergroup", True, False)
    assert (u.command, u.command_args, u.text) == ("report", (), "/report")
    assert u.message_thread_id == 134545
    assert u.is_topic_message is False
    assert u.reply_to_message_id == 134545
    assert u.conversation_key == "support:-1001293752024"  # not split per thread outside forums


def test_reactions_and_member_changes_keep_who_and_where() -> None:
    reaction = classify_update(load("update_009.json"))
    assert (reaction.chat_id, reaction.user_id, reaction.message_id) == (-1002184233434, 1459074222, 35)
    anonymous = classify_update(load("update_010.json"))
    assert anonymous.user_id is None and anonymous.chat_id == -1002199793788
    kicked = classify_update(load("update_008.json"))
    assert (kicked.chat_type, kicked.user_id) == ("private", 0)


def test_one_update_id_reused_by_the_platform_gives_one_dedup_key() -> None:
    # The corpus has two boost updates with the same update_id: the store keeps one record, and both
    # are ignored anyway, so nothing is lost.
    a = classify_update(load("update_012.json"), bot="support")
    b = classify_update(load("update_013.json"), bot="support")
    assert a.dedup_key == b.dedup_key
    assert a.ignore_reason and b.ignore_reason


def test_dedup_key_is_scoped_per_bot() -> None:
    raw = load("update_001.json")
    assert classify_update(raw, bot="support").dedup_key != classify_update(raw, bot="sales").dedup_key


# -- the forum-topic rule ----------------------------------------------------------------------


def topic_message(**changes: Any) -> dict[str, Any]:
    """update_003 moved into a forum topic, as Telegram sends topic messages."""
    raw = copy.deepcopy(load("update_003.json"))
    msg = raw["message"]
    msg["chat"]["is_forum"] = True
    msg["is_topic_message"] = True
    msg["reply_to_message"] = {
        "message_id": 134545,
        "message_thread_id": 134545,
        "chat": msg["chat"],
        "date": 1721592000,
        "forum_topic_created": {"name": "T-000123 Printer offline", "icon_color": 7322096},
        "is_topic_message": True,
    }
    msg["text"] = "We are on it"
    del msg["entities"]
    msg.update(changes)
    return raw


def test_topic_message_pointing_at_the_topic_creation_is_not_a_reply() -> None:
    u = classify_update(topic_message(), bot="staff")
    assert u.is_topic_message and u.chat_is_forum
    assert u.message_thread_id == 134545
    assert u.reply_to_message_id is None
    assert u.conversation_key == "staff:-1001293752024:134545"


def test_topic_rule_needs_either_flag_or_creation_message() -> None:
    raw = topic_message()
    del raw["message"]["is_topic_message"]  # the creation message alone is enough evidence
    assert classify_update(raw).reply_to_message_id is None
    raw = topic_message()
    del raw["message"]["reply_to_message"]["forum_topic_created"]  # the flag alone too
    assert classify_update(raw).reply_to_message_id is None


def test_real_reply_inside_a_topic_is_kept() -> None:
    raw = topic_message()
    raw["message"]["reply_to_message"] = {
        "message_id": 134600,
        "message_thread_id": 134545,
        "chat": raw["message"]["chat"],
        "date": 1721592500,
        "text": "Customer (via email): my printer says offline",
        "is_topic_message": True,
    }
    assert classify_update(raw).reply_to_message_id == 134600


# -- commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command", "args", "rest"),
    [
        ("/start", "start", (), ""),
        ("/status", "status", (), ""),
        ("/human", "human", (), ""),
        ("/claim", "claim", (), ""),
        ("/assign @alice", "assign", ("@alice",), "@alice"),
        ("/status solved", "status", ("solved",), "solved"),
        ("/status   on_hold  ", "status", ("on_hold",), "on_hold"),
        ("/priority urgent", "priority", ("urgent",), "urgent"),
        (
            "/note called the customer\nsecond line",
            "note",
            ("called", "the", "customer", "second", "line"),
            None,
        ),
        ("/kb 打印机 无法连接", "kb", ("打印机", "无法连接"), "打印机 无法连接"),
        ("/macro refund_policy", "macro", ("refund_policy",), "refund_policy"),
        ("/START", "start", (), ""),
        ("/start@OmniGateBot", "start", (), ""),
        ("/assign@omnigatebot @bob", "assign", ("@bob",), "@bob"),
        ("hello /start", None, (), ""),
        ("/etc/hosts is broken", None, (), ""),
        ("/", None, (), ""),
        ("", None, (), ""),
    ],
)
def test_parse_command(text: str, command: str | None, args: tuple[str, ...], rest: str | None) -> None:
    got_command, _, got_args, got_rest = parse_command(text, "OmniGateBot")
    assert (got_command, got_args) == (command, args)
    if rest is not None:
        assert got_rest == rest


def test_note_keeps_its_text_verbatim() -> None:
    _, _, _, rest = parse_command("/note line one\n\n  line two", "bot")
    assert rest == "line one\n\n  line two"


def test_command_for_another_bot_is_not_ours() -> None:
    assert parse_command("/start@SomeOtherBot", "OmniGateBot") == (None, "SomeOtherBot", (), "")
    # Without knowing our username every suffix is accepted (private chats never carry one anyway).
    assert parse_command("/start@SomeOtherBot", None)[0] == "start"


def test_command_fields_on_the_update() -> None:
    raw = load("update_004.json")
    raw["message"]["text"] = "/assign@OmniGateBot @alice"
    u = classify_update(raw, bot_username="omnigatebot")
    assert (u.command, u.command_bot, u.command_args, u.command_text) == (
        "assign",
        "OmniGateBot",
        ("@alice",),
        "@alice",
    )


def test_commands_in_captions() -> None:
    raw = load("update_004.json")
    msg = raw["message"]
    del msg["text"]
    msg["caption"] = "/note screenshot from the customer"
    msg["photo"] = [{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90}]
    u = classify_update(raw)
    assert (u.command, u.text, u.content_type) == ("note", "/note screenshot from the customer", "photo")


# -- content -----------------------------------------------------------------------------------


def private_message(**fields: Any) -> dict[str, Any]:
    raw = copy.deepcopy(load("update_004.json"))
    del raw["message"]["text"]
    raw["message"].update(fields)
    return raw


def test_largest_photo_size_is_chosen() -> None:
    sizes = [
        {"file_id": "mid", "file_unique_id": "m", "width": 320, "height": 240, "file_size": 9000},
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 90000},
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 67, "file_size": 900},
    ]
    u = classify_update(private_message(photo=sizes, caption="broken screen", media_group_id="album1"))
    assert u.ignore_reason is None
    assert u.photo_file_id == "big" and u.document_file_id is None
    assert u.media is not None and (u.media.width, u.media.height, u.media.file_size) == (1280, 960, 90000)
    assert (u.text, u.media_group_id) == ("broken screen", "album1")


def test_document_with_caption() -> None:
    doc = {
        "file_id": "doc1",
        "file_unique_id": "d1",
        "file_name": "invoice.pdf",
        "mime_type": "application/pdf",
        "file_size": 12345,
    }
    u = classify_update(private_message(document=doc, caption="发票"))
    assert u.document_file_id == "doc1" and u.content_type == "document"
    assert u.media is not None and (u.media.file_name, u.media.mime_type) == (
        "invoice.pdf",
        "application/pdf",
    )
    assert u.text == "发票"


def test_location_and_venue() -> None:
    u = classify_update(private_message(location={"latitude": 31.2304, "longitude": 121.4737}))
    assert u.content_type == "location" and u.location is not None
    assert (u.location.latitude, u.location.longitude) == (31.2304, 121.4737)
    venue = {"location": {"latitude": 1, "longitude": 2}, "title": "Store", "address": "1 Main St"}
    v = classify_update(private_message(venue=venue, location={"latitude": 1, "longitude": 2}))
    assert v.location is not None and (v.location.title, v.location.address, v.location.latitude) == (
        "Store",
        "1 Main St",
        1.0,
    )


def test_contact_gives_the_phone() -> None:
    u = classify_update(private_message(contact={"phone_number": "+8613800000000", "first_name": "Li"}))
    assert (u.content_type, u.contact_phone, u.ignore_reason) == ("contact", "+8613800000000", None)


def test_edited_message_is_stored_with_edit_date() -> None:
    raw = load("update_001.json")
    msg = raw.pop("message")
    msg["edit_date"] = 1569518400
    msg["text"] = "hello there (edited)"
    u = classify_update({"update_id": raw["update_id"], "edited_message": msg})
    assert (u.kind, u.ignore_reason, u.edit_date, u.text) == (
        "edited_message",
        None,
        1569518400,
        "hello there (edited)",
    )


def test_channel_posts_are_ignored() -> None:
    msg = {
        "message_id": 1,
        "date": 1,
        "chat": {"id": -1001, "type": "channel", "title": "News"},
        "text": "hi",
    }
    u = classify_update({"update_id": 5, "channel_post": msg})
    assert u.kind == "channel_post" and u.ignore_reason and "channel" in u.ignore_reason
    assert u.chat_type == "channel"


def test_callback_query() -> None:
    sent = load("update_001.json")["message"]
    query = {
        "id": "4382bfdwdsb323b2d9",
        "from": {"id": 218485655, "is_bot": False, "first_name": "小明", "language_code": "zh-hans"},
        "message": sent,
        "chat_instance": "-1234",
        "data": "kb:not_solved:42",
    }
    u = classify_update({"update_id": 9, "callback_query": query}, bot="support")
    assert (u.kind, u.ignore_reason, u.content_type) == ("callback_query", None, "callback")
    assert (u.callback_query_id, u.callback_data) == ("4382bfdwdsb323b2d9", "kb:not_solved:42")
    assert (u.chat_id, u.message_id, u.user_id) == (218485655, 6557, 218485655)
    assert (u.display_name, u.locale) == ("小明", "zh-CN")


def test_callback_on_an_inaccessible_message_still_names_the_chat() -> None:
    query = {
        "id": "q1",
        "from": {"id": 7, "is_bot": False, "first_name": "A"},
        "message": {"chat": {"id": 7, "type": "private", "first_name": "A"}, "message_id": 3, "date": 0},
        "chat_instance": "1",
        "data": "csat:5",
    }
    u = classify_update({"update_id": 10, "callback_query": query})
    assert (u.chat_id, u.message_id, u.ignore_reason) == (7, 3, None)


def test_callback_without_data_is_ignored_but_keeps_its_id() -> None:
    query = {"id": "q2", "from": {"id": 7, "is_bot": False, "first_name": "A"}, "chat_instance": "1"}
    u = classify_update({"update_id": 11, "callback_query": query, "x": 1})
    assert u.callback_query_id == "q2" and u.ignore_reason == "callback query without data"


@pytest.mark.parametrize(
    ("code", "locale"),
    [("zh-hans", "zh-CN"), ("zh", "zh-CN"), ("ZH-TW", "zh-CN"), ("en", "en"), ("ru", "en"), (None, None)],
)
def test_locale_for(code: str | None, locale: str | None) -> None:
    assert locale_for(code) == locale


def test_missing_language_gives_no_locale() -> None:
    u = classify_update(load("update_005.json"))
    assert u.language_code is None and u.locale is None


# -- robustness --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[], "update", 3, None, 1.5, True])
def test_non_objects_raise_invalid_input(value: Any) -> None:
    with pytest.raises(InvalidInput):
        classify_update(value)


@pytest.mark.parametrize("update_id", [None, "892252934", 1.0, True, [1]])
def test_missing_or_mistyped_update_id_raises_invalid_input(update_id: Any) -> None:
    raw = load("update_001.json")
    if update_id is None:
        del raw["update_id"]
    else:
        raw["update_id"] = update_id
    with pytest.raises(InvalidInput) as info:
        classify_update(raw)
    assert info.value.code == "invalid_update"


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("message", "chat", "id"), "218485655", "chat.id"),
        (("message", "message_id"), "6557", "message_id"),
        (("message", "text"), 42, "text is not a string"),
        (("message", "from"), "Waffle", "from is not an object"),
        (("message", "chat"), None, "chat is missing"),
        (("message",), [1, 2], "not an object"),
    ],
)
def test_mistyped_fields_are_ignored_with_reason(path: tuple[str, ...], value: Any, reason: str) -> None:
    raw = load("update_001.json")
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    u = classify_update(raw)
    assert u.ignore_reason is not None and u.ignore_reason.startswith("malformed message")
    assert reason.split(".")[-1] in u.ignore_reason


def _leaf_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _leaf_paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield (*prefix, index)
            yield from _leaf_paths(value, (*prefix, index))


def test_no_valid_json_object_makes_it_raise() -> None:
    """Every field of every corpus update replaced by every JSON type: classified, never raised."""
    replacements: list[Any] = [None, "x", -1, 1.5, True, [], {}, [{}]]
    checked = 0
    for name in CORPUS_EXPECTATIONS:
        original = load(name)
        for path in _leaf_paths(original):
            for value in replacements:
                raw = copy.deepcopy(original)
                target: Any = raw
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = value
                if path == ("update_id",) and type(value) is not int:
                    with pytest.raises(InvalidInput):
                        classify_update(raw)
                else:
                    assert isinstance(classify_update(raw), TelegramUpdate)
                checked += 1
    assert checked > 1000


# -- our assumptions, checked against the machine-readable Bot API -----------------------------


def test_update_kinds_are_exactly_the_bot_api_update_fields(schema: dict[str, Any]) -> None:
    update = fields_of(schema, "Update")
    assert update["update_id"]["types"] == ["Integer"] and update["update_id"]["required"]
    assert set(UPDATE_KINDS) == set(update) - {"update_id"}
    assert tg_updates.USEFUL_KINDS <= set(UPDATE_KINDS)


def test_message_fields_we_read_exist_with_the_types_we_expect(schema: dict[str, Any]) -> None:
    message = fields_of(schema, "Message")
    expected = {
        "message_id": ["Integer"],
        "message_thread_id": ["Integer"],
        "is_topic_message": ["Boolean"],
        "reply_to_message": ["Message"],
        "from": ["User"],
        "chat": ["Chat"],
        "date": ["Integer"],
        "edit_date": ["Integer"],
        "text": ["String"],
        "caption": ["String"],
        "photo": ["Array of PhotoSize"],
        "document": ["Document"],
        "location": ["Location"],
        "venue": ["Venue"],
        "contact": ["Contact"],
        "media_group_id": ["String"],
        "forum_topic_created": ["ForumTopicCreated"],
    }
    for name, types in expected.items():
        assert message[name]["types"] == types, name
    assert message["chat"]["required"] and message["message_id"]["required"]
    for name in tg_updates._MEDIA_FIELDS + tg_updates._SERVICE_FIELDS + tg_updates._UNSUPPORTED_CONTENT:
        assert name in message, name


def test_every_service_message_field_is_treated_as_service(schema: dict[str, Any]) -> None:
    message = fields_of(schema, "Message")
    service = {n for n, f in message.items() if "Service message" in f["description"]}
    assert service <= set(tg_updates._SERVICE_FIELDS)


def test_nested_types_we_read(schema: dict[str, Any]) -> None:
    def types(type_name: str, field_name: str) -> list[str]:
        result: list[str] = fields_of(schema, type_name)[field_name]["types"]
        return result

    assert types("User", "id") == ["Integer"]
    assert types("User", "language_code") == ["String"]
    assert types("Chat", "id") == ["Integer"]
    assert types("Chat", "type") == ["String"]
    assert types("Chat", "is_forum") == ["Boolean"]
    assert types("CallbackQuery", "id") == ["String"]
    assert types("CallbackQuery", "data") == ["String"]
    assert types("CallbackQuery", "message") == ["MaybeInaccessibleMessage"]
    assert {f["name"] for f in schema["types"]["InaccessibleMessage"]["fields"]} == {
        "chat",
        "message_id",
        "date",
    }
    assert types("PhotoSize", "width") == ["Integer"]
    assert types("Document", "file_name") == ["String"]
    assert types("Location", "latitude") == ["Float"]
    assert types("Contact", "phone_number") == ["String"]
    assert types("MessageReactionUpdated", "user") == ["User"]
    assert types("ChatMemberUpdated", "new_chat_member") == ["ChatMember"]
