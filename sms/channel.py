"""The SMS channel as a plug-in (`hotline.channels` entry point `sms`).

Mounts smsbox's callbacks (`GET|POST /sms/kannel`), guards them with Kannel's source
allow-list (`sms.kannel_allowed_cidrs`) and optional path token, needs the SMS
prompts (`sms.reply_hint`, `sms.help`, …) in every language, and has `flows check`
measure every screen an SMS keyword reaches (`sms.measure`). Routes load with the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hotline.web.channels import ChannelPlugin
from sms.render import SMS_PROMPTS

if TYPE_CHECKING:
    from aiohttp import web

    from hotline.base.config import Settings
    from hotline.i18n.catalog import CatalogSet
    from hotline.web.guards import Gateway
    from sms.measure import SmsScreenCheck

__all__ = ["PLUGIN", "gateways", "screen_checks", "setup"]

CHANNEL = "sms"


def setup(app: web.Application) -> None:
    from sms import routes

    routes.setup(app)


def gateways(settings: Settings) -> Sequence[Gateway]:
    """smsbox calls from its own addresses (allow-list) and/or with the path token."""
    from hotline.web.guards import Gateway
    from hotline.web.security import parse_networks
    from sms.dialects import kannel
    from sms.routes import polite_reply

    sms = settings.sms
    token = sms.kannel_path_token
    return [
        Gateway(
            prefix=f"/sms/{kannel.NAME}",
            channel=CHANNEL,
            dialect=kannel.NAME,
            allowed=parse_networks(sms.kannel_allowed_cidrs),
            path_token=token.get_secret_value() if token else None,
            polite=polite_reply,
        )
    ]


def screen_checks(catalogs: CatalogSet, settings: Settings) -> SmsScreenCheck:
    """`flows check` measures every screen an SMS keyword reaches against `sms.max_parts`."""
    from sms.measure import SmsScreenCheck

    return SmsScreenCheck.from_settings(catalogs, settings)


PLUGIN = ChannelPlugin(
    name=CHANNEL,
    setup=setup,
    gateways=gateways,
    prompt_keys=SMS_PROMPTS,
    screen_checks=screen_checks,
)
