"""The multi-instance deployment as Debian's docker-compose reads it (no container engine runs here):
a one-node MongoDB replica set, two gateway replicas pointed at it, and nginx spreading over both."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import yaml

from tests.conftest import ROOT, require


def test_compose_file_validates_with_a_replica_set_two_gateways_and_the_proxy() -> None:
    require(shutil.which("docker-compose") is not None, "docker-compose is not installed")
    done = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = yaml.safe_load(done.stdout)["services"]
    gateways = sorted(name for name in services if name.startswith("gateway-"))
    assert gateways == ["gateway-1", "gateway-2"]
    assert "--replSet" in services["mongo"]["command"]
    for name in gateways:
        env = services[name]["environment"]
        assert (
            "replicaSet=rs0" in env["OMNIGATE_MONGODB__URI"] and "mongo:27017" in env["OMNIGATE_MONGODB__URI"]
        )
        assert services[name]["depends_on"]["mongo"]["condition"] == "service_healthy"
    # The proxy's upstreams are exactly the gateway services.
    nginx = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert sorted(re.findall(r"server (gateway-\d+):8080", nginx)) == gateways
    assert sorted(services["proxy"]["depends_on"]) == gateways
