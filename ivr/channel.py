"""The voice channel as a plug-in (`hotline.channels` entry point `ivr`).

Mounts the voice webhooks of each platform (Twilio `POST /ivr/twilio/voice`, Africa's
Talking `POST /ivr/africastalking`), the clip route and the speech worker; guards the
webhooks (Twilio signature; Africa's Talking allow-list and path token); needs the voice
prompts in every language. Its subcommand, `hotline prompts build`, is `ivr.cli`.
The routes and the speech machinery load when the app is built, not with the plug-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from hotline.web.channels import ChannelPlugin
from ivr.render import VOICE_PROMPTS

if TYPE_CHECKING:
    from aiohttp import web

    from hotline.base.config import Settings
    from hotline.web.guards import Gateway

__all__ = ["PLUGIN", "gateways", "setup"]

CHANNEL = "ivr"


def setup(app: web.Application) -> None:
    from ivr import routes

    routes.setup(app)


def gateways(settings: Settings) -> Sequence[Gateway]:
    """How each platform's webhooks are guarded; refused callers hear a sentence."""
    from hotline.web.guards import Gateway
    from hotline.web.security import parse_networks
    from ivr import auth, routes
    from ivr.dialects import africastalking, twilio
    from ivr.polite import polite_reply, polite_reply_africastalking

    security = settings.security
    token = security.twilio_auth_token
    at_token = security.at_path_token
    return [
        Gateway(
            prefix=f"/ivr/{twilio.NAME}",
            channel=CHANNEL,
            dialect=twilio.NAME,
            subscriber_field="From",
            signature=(
                partial(auth.check_request, secret=token.get_secret_value()) if token else None
            ),
            public_base_url=settings.ivr.public_base_url,
            polite=polite_reply,
            max_field_chars=security.max_field_chars,
            form=routes.read_form,
        ),
        Gateway(
            prefix=f"/ivr/{africastalking.NAME}",
            channel=CHANNEL,
            dialect=africastalking.NAME,
            subscriber_field="callerNumber",
            allowed=parse_networks(security.at_allowed_cidrs),
            path_token=at_token.get_secret_value() if at_token else None,
            polite=polite_reply_africastalking,
            max_field_chars=security.max_field_chars,
            form=routes.read_form,
        ),
    ]


PLUGIN = ChannelPlugin(
    name=CHANNEL,
    setup=setup,
    gateways=gateways,
    prompt_keys=VOICE_PROMPTS,
)
