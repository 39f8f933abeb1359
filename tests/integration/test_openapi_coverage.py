"""The OpenAPI document names every method of every /api/v1 route the app serves."""

from __future__ import annotations

from typing import Any

from tests.helpers import running_app


async def test_document_covers_every_api_route(settings: Any, mongo: Any) -> None:
    async with running_app(settings) as client:
        document = await (await client.get("/api/v1/openapi.json")).json()
        missing = []
        for route in client.app.router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            if not path.startswith("/api/v1/") or route.method in ("HEAD", "OPTIONS"):
                continue
            if route.method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{route.method} {path}")
        assert not missing, f"routes missing from /api/v1/openapi.json: {sorted(missing)}"
