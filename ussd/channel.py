"""The USSD channel as a plug-in (`hotline.channels` entry point `ussd`).

Mounts `POST /ussd/<dialect>` for every dialect in `ussd.dialects` and Africa's Talking's
end-of-session events, binds to an operator's USSD gateway over SMPP (`ussd.smpp_link`) and to
osmo-hlr as an External USSD Entity (`ussd.gsup_link`) when configured, guards each dialect's route as the dialect describes, needs the
navigation prompts (`98.更多`, `0.返回` …) in every language, and measures flow screens
with the USSD budget (`ussd.measure`). The routes load when the app is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hotline.web.channels import ChannelPlugin
from ussd.render import NAV_KEYS, PAGE_KEY

if TYPE_CHECKING:
    from aiohttp import web

    from hotline.base.config import Settings
    from hotline.i18n.catalog import CatalogSet
    from hotline.web.guards import Gateway
    from ussd.measure import UssdScreenCheck

__all__ = ["PLUGIN", "gateways", "screen_checks", "setup"]

CHANNEL = "ussd"


def setup(app: web.Application) -> None:
    from ussd import events, gsup_link, routes, smpp_link

    routes.setup(app)
    events.setup(app)
    smpp_link.setup(app)
    gsup_link.setup(app)


def gateways(settings: Settings) -> Sequence[Gateway]:
    """One gateway per dialect: `/ussd/<NAME>`, answered politely with `END …`."""
    from hotline.web.guards import Gateway
    from ussd.dialects import dialects
    from ussd.form import decode_read, read_form
    from ussd.polite import polite_reply

    return [
        dialect.gateway(
            settings,
            Gateway(
                prefix=f"/ussd/{dialect.NAME}",
                channel=CHANNEL,
                dialect=dialect.NAME,
                polite=polite_reply,
                form=dialect.read,
                # The guard has read the body: a form decodes without another read.
                decode=decode_read if dialect.read is read_form else None,
            ),
        )
        for dialect in dialects()
    ]


def screen_checks(catalogs: CatalogSet, settings: Settings) -> UssdScreenCheck:
    from ussd.measure import UssdScreenCheck

    return UssdScreenCheck.from_settings(catalogs, settings)


PLUGIN = ChannelPlugin(
    name=CHANNEL,
    setup=setup,
    gateways=gateways,
    prompt_keys=(*NAV_KEYS, PAGE_KEY),
    screen_checks=screen_checks,
)
