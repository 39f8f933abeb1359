"""The message model's stored shape."""

from __future__ import annotations

import dataclasses

from ticket_core.messages import AttachmentRef, CustomerIdentity, InboundMessage


def test_to_doc_is_the_dataclass_shape_and_round_trips() -> None:
    msg = InboundMessage(
        channel="telegram",
        account="support",
        external_id="42",
        dedup_key="telegram:support:42",
        identity=CustomerIdentity("telegram", "support", "7", display_name="Mei", email="m@example.com"),
        conversation_key="telegram:support:7",
        text="hello",
        attachments=(AttachmentRef("f1", "a.png", "image/png", 10),),
        fields={"action": "pick"},
        meta={"reply_to": "7", "nested": {"a": [1, 2]}},
    )
    doc = msg.to_doc()
    expected = dataclasses.asdict(msg)
    expected["fields"] = dict(msg.fields)
    expected["meta"] = dict(msg.meta)
    expected["attachments"] = [dataclasses.asdict(a) for a in msg.attachments]
    assert doc == expected
    assert InboundMessage.from_doc(doc) == msg
