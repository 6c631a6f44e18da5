"""The web phone simulator at `/simulator` (on with `simulator: true`; off by default).

Plain HTML/CSS/JS, served as package data with no build step. The page talks only to
the public endpoints a gateway or a voice platform uses (`POST /ussd/africastalking`,
`POST /ivr/twilio/voice` and the TwiML `action` URLs, `GET /ivr/audio/…`), from the
same origin, so what it shows is what a handset on a real network would get.

Beside the phone, an inspector shows what the engine holds — flow, version, state,
variables (masked), each step's events, the flow graph with the current state — from
the simulator-only endpoints of `hotline.web.simulator.inspector`, mounted here and
nowhere else.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["STATIC", "setup"]

STATIC = Path(__file__).parent / "static"


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    """Mount `GET /simulator`, its static files under `/simulator/static/` and the
    inspector's `/simulator/api/…` (with its turn observer)."""
    from hotline.web.simulator import inspector

    app.router.add_get("/simulator", _index, name="simulator")
    app.router.add_static("/simulator/static/", STATIC, name="simulator-static")
    inspector.setup(app)
