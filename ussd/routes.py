"""aiohttp routes of the USSD channel: `POST /ussd/africastalking`.

parse → step → lay out → reply: the dialect reads the request into a channel event,
`take_turn` steps the engine and lays the screen out as pages, the dialect writes
`CON …`/`END …`. A malformed request gets HTTP 400 with a reason (the gateway then ends
the session); trouble on our side gets a polite `END` sentence, because the subscriber
is waiting on a handset — never a 500 or a traceback.
"""

from __future__ import annotations

from aiohttp import web

from hotline.base.errors import BadGatewayRequest
from hotline.web.forms import gateway_form
from hotline.web.keys import ENGINE, SETTINGS
from hotline.web.turns import take_turn
from ussd.dialects import africastalking
from ussd.form import read_form
from ussd.render import UssdLayout

__all__ = ["USSD_LAYOUT", "setup"]

USSD_LAYOUT = web.AppKey("USSD_LAYOUT", UssdLayout)


def setup(app: web.Application) -> None:
    """Mount the USSD routes; the layout is built at startup from the engine's catalogs."""
    app.on_startup.append(_build_layout)
    app.router.add_post(
        f"/ussd/{africastalking.NAME}", _africastalking, name=f"ussd-{africastalking.NAME}"
    )


async def _build_layout(app: web.Application) -> None:
    # on_startup runs after every cleanup context, so the engine exists by now.
    app[USSD_LAYOUT] = UssdLayout.from_settings(app[ENGINE].catalogs, app[SETTINGS].ussd)


async def _africastalking(request: web.Request) -> web.Response:
    app = request.app
    try:
        form = await gateway_form(request, read_form)
        event = africastalking.parse(form.fields, app[SETTINGS].ussd)
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    screen, page = await take_turn(app, event, app[USSD_LAYOUT].lay_out)
    body, headers = africastalking.reply(page, screen.label)
    return web.Response(body=body.encode("utf-8"), headers=headers)
