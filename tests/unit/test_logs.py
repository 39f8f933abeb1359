from __future__ import annotations

import json
import logging

from gateway.logs import JsonFormatter, message_id, redact, request_id


def test_secrets_are_redacted_wherever_they_appear() -> None:
    samples = {
        "token og_K40_KScO0rT3yVJeE0br2Tkgz7wbfGzqfDnVnoxhCIc used": "og_K40",
        "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage": "AAHdq",
        "GET /cgi-bin/media/get?access_token=ACCESS_TOKEN_VALUE&media_id=1": "ACCESS_TOKEN_VALUE",
        'config {"password": "hunter2", "user": "a"}': "hunter2",
        "Authorization: Bearer abc.def.ghi": "abc.def",
        "connect mongodb://admin:s3cret@db1:27017/omnigate": "s3cret",
    }
    for text, secret in samples.items():
        cleaned = redact(text)
        assert secret not in cleaned, cleaned
    assert redact("nothing to hide here") == "nothing to hide here"


def test_json_lines_carry_request_and_message_ids() -> None:
    record = logging.LogRecord(
        "gateway.bus", logging.WARNING, __file__, 1, "handler failed: password=%s", ("x1",), None
    )
    token_r, token_m = request_id.set("req-1"), message_id.set("6b0")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token_r)
        message_id.reset(token_m)
    assert line["level"] == "warning" and line["logger"] == "gateway.bus"
    assert line["request_id"] == "req-1" and line["message_id"] == "6b0"
    assert "x1" not in line["msg"] and line["ts"].endswith("+00:00")
