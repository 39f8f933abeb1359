"""The ceiling for HTTP intake on this machine: a bare aiohttp handler that reads the body and answers
200, nothing else. Run as its own process by bench/channel_intake.py (`--serve PORT`), so the client
and server share the two cores exactly as they do when the gateway is measured.

    python bench/http_ceiling.py --serve 8099
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, required=True, help="port on 127.0.0.1")
    args = parser.parse_args()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    app.router.add_get("/healthz", handle)
    web.run_app(app, host="127.0.0.1", port=args.serve, access_log=None, print=None)


if __name__ == "__main__":
    main()
