"""Typed settings: a TOML file plus `OMNIGATE_<SECTION>__<KEY>` environment overrides.

Built once at start-up and passed in; nothing reads configuration at import time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_type_hints

from channels.settings import EmailMailbox, TelegramBot, WeChatAccount
from ticket_core.errors import InvalidInput
from ticket_core.secret import Secret


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 60 * 1024 * 1024
    form_wait_seconds: float = 5.0  # how long a form submission waits to show the ticket number


@dataclass(frozen=True)
class StorageSettings:
    path: str = "var"
    max_attachment_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class MongoSettings:
    uri: Secret = field(default_factory=lambda: Secret(""))
    database: str = "omnigate"


@dataclass(frozen=True)
class BusSettings:
    group_commit_ms: float = 3.0
    max_batch: int = 200
    lease_seconds: float = 30.0
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    sweep_interval_seconds: float = 10.0
    workers: int = 32
    dispatch: bool = True  # false: store only (benchmarks of pure intake, maintenance)
    publish_timeout_seconds: float = 4.0  # then the webhook answers 503 and the platform retries


@dataclass(frozen=True)
class OutboxSettings:
    max_attempts: int = 8
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    lease_seconds: float = 60.0
    poll_interval_seconds: float = 2.0
    concurrency: int = 8


@dataclass(frozen=True)
class TicketSettings:
    reopen_window_days: float = 7.0
    number_prefix: str = "T-"


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    mongodb: MongoSettings = field(default_factory=MongoSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    tickets: TicketSettings = field(default_factory=TicketSettings)
    wechat_accounts: tuple[WeChatAccount, ...] = ()
    telegram_bots: tuple[TelegramBot, ...] = ()
    email_mailboxes: tuple[EmailMailbox, ...] = ()
    seed_demo: bool = True

    @property
    def embedded(self) -> bool:
        return not self.mongodb.uri


# -- loading ---------------------------------------------------------------------------------------

_SECTIONS = {
    "server": "server",
    "storage": "storage",
    "mongodb": "mongodb",
    "bus": "bus",
    "outbox": "outbox",
    "tickets": "tickets",
}
_LISTS = {
    ("wechat", "accounts"): "wechat_accounts",
    ("telegram", "bots"): "telegram_bots",
    ("email", "mailboxes"): "email_mailboxes",
}


def _coerce(cls: type, value: Any, where: str) -> Any:
    if cls is Secret:
        return value if isinstance(value, Secret) else Secret(str(value))
    if cls is bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if cls in (int, float, str):
        try:
            return cls(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"config {where}: expected {cls.__name__}, got {value!r}") from exc
    return value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InvalidInput(f"config {where}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidInput(f"config {where}: {exc}") from exc


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """OMNIGATE_SERVER__PORT=9000 -> {"server": {"port": "9000"}}."""
    out: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        if not key.startswith("OMNIGATE_") or "__" not in key:
            continue
        section, _, name = key[len("OMNIGATE_") :].partition("__")
        out.setdefault(section.lower(), {})[name.lower()] = value
    return out


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InvalidInput(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc
    for section, values in _env_overrides(env).items():
        if section in _SECTIONS:
            raw.setdefault(section, {}).update(values)
        elif section == "seed_demo" or (section == "demo" and "seed" in values):
            raw["seed_demo"] = values.get("seed", "true")
    kwargs: dict[str, Any] = {}
    hints = get_type_hints(Settings)
    for section, attr in _SECTIONS.items():
        if section in raw:
            kwargs[attr] = _build(hints[attr], raw[section], section)
    for (top, sub), attr in _LISTS.items():
        items = raw.get(top, {}).get(sub, [])
        item_cls = get_args(hints[attr])[0]
        built = tuple(_build(item_cls, item, f"{top}.{sub}[{i}]") for i, item in enumerate(items))
        names = [b.name for b in built]
        if len(set(names)) != len(names):
            raise InvalidInput(f"config {top}.{sub}: names must be unique, got {names}")
        kwargs[attr] = built
    if "seed_demo" in raw:
        kwargs["seed_demo"] = _coerce(bool, raw["seed_demo"], "seed_demo")
    return Settings(**kwargs)


def describe(settings: Settings) -> str:
    """A JSON view of the settings with every secret masked, for `doctor` and logs."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, Secret):
            return "***" if value else ""
        return value

    return json.dumps(plain(settings), indent=2, ensure_ascii=False)


__all__ = ["Secret", "Settings", "describe", "load_settings"]
