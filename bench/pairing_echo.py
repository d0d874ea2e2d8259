"""The baseline of the pairing benchmark: a bare python-socketio server on aiohttp.

    .venv/bin/python bench/pairing_echo.py --port P

One event, ``echo``, whose ack is its payload; ``GET /healthz`` for readiness. Same
server options as Xiaowu's (aiohttp mode, websocket clients) and nothing else, so the
difference between the two is the application's work.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
from aiohttp import web


def create_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[],
                               max_http_buffer_size=64 * 1024, logger=False,
                               engineio_logger=False)

    async def echo(sid: str, data: Any) -> Any:
        return data

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    sio.on("echo", echo)
    app = web.Application()
    sio.attach(app)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
