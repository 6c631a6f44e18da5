"""aiohttp routes of the USSD channel: `POST /ussd/<dialect>` (`/ussd/africastalking`).

The handler reads and checks the request, lets the dialect parse it, asks the engine for
the turn and lets the dialect write it. A malformed request gets HTTP 400 with a reason
(the gateway then ends the session); trouble on our side gets a polite `END` sentence,
because the subscriber is waiting on a handset — never a 500 or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotline.base.errors import BadGatewayRequest, SessionStoreUnavailable
from hotline.flow.engine import Engine
from hotline.flow.events import ChannelEvent
from hotline.flow.screen import Turn
from hotline.web.forms import gateway_form
from hotline.web.keys import ENGINE, PSEUDONYM, SETTINGS
from ussd.dialects import UssdDialect, dialects
from ussd.form import read_form
from ussd.render import UssdLayout

__all__ = ["USSD_LAYOUT", "apology_turn", "setup"]

log = logging.getLogger(__name__)

USSD_LAYOUT = web.AppKey("USSD_LAYOUT", UssdLayout)


def setup(app: web.Application) -> None:
    """Mount `POST /ussd/<NAME>` (`ussd-<NAME>`) for every dialect in `ussd.dialects`;
    the layout is built at startup from the engine's catalogs."""
    app.on_startup.append(_build_layout)
    for dialect in dialects():
        name = dialect.NAME
        app.router.add_post(f"/ussd/{name}", _handler(dialect), name=f"ussd-{name}")


def _handler(dialect: UssdDialect) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        return await _handle(request, dialect)

    handle.__name__ = handle.__qualname__ = f"ussd_{dialect.NAME}"
    return handle


async def _build_layout(app: web.Application) -> None:
    # on_startup runs after every cleanup context, so the engine exists by now.
    app[USSD_LAYOUT] = UssdLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].ussd)


def apology_turn(engine: Engine, layout: UssdLayout, language: str | None = None) -> Turn:
    """The polite final turn for when something on our side failed."""
    screen = engine.apology(language)
    return Turn(screen=screen, reply=layout.render(screen), events=("apology",))


async def _handle(request: web.Request, dialect: UssdDialect) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    try:
        form = await gateway_form(request, read_form)
        event = dialect.parse(form.fields, settings.ussd)
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    engine, layout = app[ENGINE], app[USSD_LAYOUT]
    try:
        turn = await engine.step(event, layout)
    except SessionStoreUnavailable as exc:
        log.warning("ussd: session store unavailable (%s); answered with an apology", exc)
        turn = apology_turn(engine, layout)
    except Exception:
        log.exception("ussd: step failed for subscriber %s", _who(app, event))
        turn = apology_turn(engine, layout)
    body, headers = dialect.reply(turn, ends=layout.ends_session(turn.screen))
    return web.Response(body=body.encode("utf-8"), headers=headers)


def _who(app: web.Application, event: ChannelEvent) -> str:
    # A pseudonym, never the number itself (DESIGN.md §10).
    return app[PSEUDONYM](event.subscriber)
