"""aiohttp routes of the USSD channel: `POST /ussd/<dialect>` (`/ussd/africastalking`).

parse → step → lay out → reply: the dialect reads the request into a channel event,
`take_turn` steps the engine and lays the screen out as pages, the dialect writes
`CON …`/`END …`. A malformed request gets HTTP 400 with a reason (the gateway then ends
the session); trouble on our side gets a polite `END` sentence, because the subscriber
is waiting on a handset — never a 500 or a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotline.base.errors import BadGatewayRequest
from hotline.web.forms import gateway_form, known_form
from hotline.web.keys import ENGINE, SETTINGS
from hotline.web.turns import take_turn
from ussd.dialects import UssdDialect, dialects
from ussd.render import UssdLayout

__all__ = ["USSD_LAYOUT", "setup"]

USSD_LAYOUT = web.AppKey("USSD_LAYOUT", UssdLayout)
#: The layout in use (one slot, replaced after a prompt reload; the app is frozen by then).
_CURRENT: web.AppKey[list[UssdLayout]] = web.AppKey("ussd.CURRENT_LAYOUT")


def setup(app: web.Application) -> None:
    """Mount `POST /ussd/<NAME>` (`ussd-<NAME>`) for every dialect in `ussd.dialects`;
    the layout is built at startup from the engine's catalogs."""
    app.on_startup.append(_build_layout)
    for dialect in dialects():
        name = dialect.NAME
        app.router.add_post(f"/ussd/{name}", _handler(dialect), name=f"ussd-{name}")


def _handler(dialect: UssdDialect) -> Callable[[web.Request], Awaitable[web.Response]]:
    # A partial, not a closure that awaits `_handle`: one coroutine less a request, and
    # one frame less for every resume of the request's task.
    return functools.partial(_handle, dialect=dialect)


async def _build_layout(app: web.Application) -> None:
    # on_startup runs after every cleanup context, so the engine exists by now.
    app[USSD_LAYOUT] = UssdLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].ussd)
    app[_CURRENT] = [app[USSD_LAYOUT]]


def _layout(app: web.Application) -> UssdLayout:
    """The layout of the engine's catalogs: built again once after a prompt reload."""
    current = app[_CURRENT]
    catalogs = app[ENGINE].catalogs
    if current[0].catalogs is not catalogs:
        current[0] = UssdLayout.from_settings(catalogs, app[SETTINGS].ussd)
    return current[0]


async def _handle(request: web.Request, dialect: UssdDialect) -> web.Response:
    app = request.app
    try:
        # The guard has read the form as this dialect reads it: no coroutine for the memo.
        form = known_form(request, dialect.read) or await gateway_form(request, dialect.read)
        event = dialect.parse(form.fields, app[SETTINGS].ussd)
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    screen, page = await take_turn(app, event, _layout(app).lay_out)
    body, headers = dialect.reply(page, screen.label, form.fields)
    return web.Response(body=body.encode("utf-8"), headers=headers)
