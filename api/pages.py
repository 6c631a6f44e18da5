"""What a browser reads: the OpenAPI document, its page, and the H5 mobile page.

Everything is served from `api/static/` (no CDN, no external font or script), so the
docs and the H5 page work on a network that reaches only hotline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson
from aiohttp import web

from api.openapi import document
from api.routing import PREFIX, ApiRoute
from hotline.web.keys import SETTINGS

__all__ = ["STATIC", "setup"]

STATIC = Path(__file__).resolve().parent / "static"
OPENAPI = web.AppKey("API_OPENAPI", bytes)
_HTML = "text/html"


def setup(app: web.Application, routes: Sequence[ApiRoute]) -> None:
    app[OPENAPI] = orjson.dumps(document(routes), option=orjson.OPT_INDENT_2)
    app.router.add_get(f"{PREFIX}/openapi.json", _openapi, name="api-openapi")
    app.router.add_get(f"{PREFIX}/docs", _page("docs.html"), name="api-docs")
    app.router.add_get("/h5", _page("h5.html", h5=True), name="h5")
    app.router.add_static("/api/static", STATIC, name="api-static")


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def _page(name: str, *, h5: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = (STATIC / name).read_bytes()

    async def page(request: web.Request) -> web.Response:
        if h5 and not request.app[SETTINGS].api.h5:
            raise web.HTTPNotFound()
        return web.Response(
            body=body,
            content_type=_HTML,
            charset="utf-8",
            headers={
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return page
