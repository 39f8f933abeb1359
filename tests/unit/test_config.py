from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import describe, load_settings
from ticket_core.errors import InvalidInput

TOML = """
[server]
port = 9000
public_url = "https://support.example.com"

[[wechat.accounts]]
name = "main"
app_id = "wx123"
app_secret = "very-secret"
token = "tok"
encoding_aes_key = "k"
mode = "safe"
api_base_url = "http://127.0.0.1:9999"

[[email.mailboxes]]
name = "support"
address = "support@example.com"
password = "hunter2"
"""


def test_toml_plus_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "omnigate.toml"
    path.write_text(TOML, encoding="utf-8")
    settings = load_settings(
        path,
        env={
            "OMNIGATE_SERVER__PORT": "9100",
            "OMNIGATE_MONGODB__URI": "mongodb://x",
            "OMNIGATE_BUS__DISPATCH": "false",
            "UNRELATED": "1",
        },
    )
    assert settings.server.port == 9100
    assert settings.server.public_url == "https://support.example.com"
    assert settings.mongodb.uri.get() == "mongodb://x" and not settings.embedded
    assert settings.bus.dispatch is False
    assert settings.wechat_accounts[0].app_secret.get() == "very-secret"
    assert settings.email_mailboxes[0].smtp_port == 465


def test_secrets_never_show(tmp_path: Path) -> None:
    path = tmp_path / "omnigate.toml"
    path.write_text(TOML, encoding="utf-8")
    settings = load_settings(path, env={})
    for text in (repr(settings), str(settings), describe(settings)):
        assert "very-secret" not in text and "hunter2" not in text
    assert "***" in describe(settings)


def test_defaults_mean_embedded_database() -> None:
    settings = load_settings(None, env={})
    assert settings.embedded and settings.server.port == 8080 and settings.storage.path == "var"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[server]\nport = 'abc'\n", "expected int"),
        ("[server]\nbogus = 1\n", "unknown keys"),
        ("[[telegram.bots]]\nname='a'\n[[telegram.bots]]\nname='a'\n", "unique"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_configuration_is_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        load_settings(path, env={})
