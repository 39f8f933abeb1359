"""A SecantusDB server for tests and benchmarks: the embedded database over its real wire protocol."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.database import free_port, secantus_command


def wait_port(port: int, proc: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def spawn(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """`python -m secantus` on a loopback port with its data and log under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "secantus.log", "wb") as log:
        return subprocess.Popen(
            secantus_command(port, folder / "data"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def database_server(folder: Path) -> Iterator[str]:
    """One SecantusDB server that several gateways share (`[mongodb] uri`); yields its URI."""
    port = free_port()
    proc = spawn(folder, port)
    try:
        wait_port(port, proc)
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
