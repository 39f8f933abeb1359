"""`omnigate email parse FILE.eml` prints the normalised message through intake's own builder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.cli import main
from tests.conftest import CORPORA

DATA = Path(__file__).resolve().parent.parent / "data" / "eml"


def test_parse_prints_the_inbound_message_as_json(capsys: Any) -> None:
    assert main(["email", "parse", str(DATA / "gb2312_body.eml")]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("subject", "from", "to", "message_id", "references", "text", "full_text", "charset_notes"):
        assert key in out
    assert out["charset_notes"] and "gb18030" in out["charset_notes"][0]
    assert "\ufffd" not in out["text"]
    assert out["inbound"]["dedup_key"].startswith("email:")
    assert out["inbound"]["conversation_key"] == f"email:support:{out['from'].lower()}"
    assert out["auto_submitted"] == {**out["auto_submitted"], "automatic": False, "why": []}


def test_parse_explains_why_a_bounce_is_automatic(capsys: Any) -> None:
    bounces = sorted((CORPORA / "email" / "eml").rglob("*bounce*.eml"))
    assert bounces
    assert main(["email", "parse", str(bounces[0])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auto_submitted"]["automatic"] is True and out["auto_submitted"]["why"]
    assert out["inbound"]["kind"] == "mail_event"


def test_parse_of_something_that_is_no_mail_exits_1(tmp_path: Path, capsys: Any) -> None:
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"\x00\x01\x02")
    assert main(["email", "parse", str(junk)]) == 1
    assert "not an email" in capsys.readouterr().err
