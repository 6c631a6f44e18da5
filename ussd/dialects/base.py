"""What a USSD gateway dialect is: the typed protocol every `ussd/dialects/<name>.py` meets.

A dialect turns one gateway's callback into a `ChannelEvent` and the engine's turn back
into that gateway's answer, and says how its route is guarded. It is pure: no aiohttp
request, Redis or provider objects inside, so its tests use plain dicts. A module of this
package that does not start with `_` is a dialect and exposes one as `DIALECT`; the USSD
channel mounts `POST /ussd/<NAME>` for each (`ussd.dialects.dialects()`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import ClassVar, Protocol

from aiohttp import web

from hotline.base.config import Settings, UssdSettings
from hotline.flow.events import ChannelEvent
from hotline.web.forms import GatewayForm
from hotline.web.guards import Gateway
from ussd.page import UssdPage

__all__ = ["UssdDialect"]


class UssdDialect(Protocol):
    """One USSD gateway's wire format."""

    #: The URL segment (`/ussd/<NAME>`), the module's name and the metrics label.
    NAME: ClassVar[str]

    def read(self, request: web.Request) -> Awaitable[GatewayForm]:
        """The request's fields (`ussd.form.read_form` for a form, `ussd.jsonform.read_json`
        for a JSON object); raises `BadGatewayRequest(reason)`."""
        ...

    def parse(self, form: Mapping[str, str], settings: UssdSettings) -> ChannelEvent:
        """The channel event of one callback; raises `BadGatewayRequest(reason)`."""
        ...

    def reply(
        self, page: UssdPage, label: str, form: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]:
        """Body and headers of the answer for a laid-out page; `label` names the step,
        `form` is the request's fields (gateways that want some echoed back)."""
        ...

    def gateway(self, settings: Settings, base: Gateway) -> Gateway:
        """How the route is guarded: `base` (prefix, channel, dialect, the channel's polite
        reply and form reader) with this gateway's subscriber field and authentication."""
        ...
