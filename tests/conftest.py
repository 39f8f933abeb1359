"""Shared fixtures: the embedded database over its wire protocol, settings, the app, and a loopback guard."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from gateway.config import (
    BusSettings,
    MongoSettings,
    OutboxSettings,
    ServerSettings,
    Settings,
    StorageSettings,
)
from tests.dbserver import database_server
from ticket_core.secret import Secret

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
ARTIFACTS = ROOT / "tests" / "artifacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip when a system component is missing, except in CI, where nothing may skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


# -- loopback guard ---------------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        host = address[0]
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            if host != "localhost":
                raise ConnectionRefusedError(f"tests may only reach loopback, not {host!r}") from None
            return
        if not ip.is_loopback:
            raise ConnectionRefusedError(f"tests may only reach loopback, not {host}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


# -- database ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MongoDB wire endpoint: OMNIGATE_TEST_MONGODB_URI, or an embedded SecantusDB per test module.

    Per module, not per session: one SecantusDB server that had served hundreds of tests (each with its
    own database, dropped after) twice stopped answering for minutes mid-suite, in CI and here; a fresh
    server per module costs about a second.
    """
    external = os.environ.get("OMNIGATE_TEST_MONGODB_URI")
    if external:
        yield external
        return
    with database_server(tmp_path_factory.mktemp("secantus")) as uri:
        yield uri


@pytest.fixture
def db_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(mongo_uri: str, db_name: str, tmp_path: Path) -> SettingsFactory:
    """Settings for one test: its own database on the shared server, fast retries and leases."""

    def make(**sections: Any) -> Settings:
        base = Settings(
            server=ServerSettings(form_wait_seconds=5.0),
            storage=StorageSettings(path=str(tmp_path / "var")),
            mongodb=MongoSettings(uri=Secret(mongo_uri), database=db_name),
            bus=BusSettings(lease_seconds=5, retry_base_seconds=0.05, sweep_interval_seconds=0.5),
            outbox=OutboxSettings(retry_base_seconds=0.05, retry_max_seconds=0.5, poll_interval_seconds=0.2),
            seed_demo=False,
        )
        changes: dict[str, Any] = {}
        for name, value in sections.items():
            current = getattr(base, name)
            changes[name] = dataclasses.replace(current, **value) if isinstance(value, dict) else value
        return dataclasses.replace(base, **changes)

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def mongo(mongo_uri: str, db_name: str) -> AsyncIterator[Any]:
    """A direct driver handle on the test's database (indexes created, as at start-up)."""
    from gateway.database import ensure_indexes

    # A socket timeout turns a wedged read into an error instead of a silent 300 s hang.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, socketTimeoutMS=60000
    )
    try:
        await ensure_indexes(client[db_name])
        yield client[db_name]
    finally:
        await client.drop_database(db_name)
        await client.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "chromium is not installed (make test installs it when run as root)")
    assert path is not None
    return path
