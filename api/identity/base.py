"""The exchange protocol and the factory that builds the configured ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp

from hotline.base.config import IdentitySettings

__all__ = ["IdentityExchange", "IdentityRefused", "IdentityUnavailable", "open_exchanges"]


class IdentityRefused(Exception):
    """The provider says the code is not valid (used, expired, forged)."""


class IdentityUnavailable(Exception):
    """The provider could not be asked (network, timeout, its own failure)."""


class IdentityExchange(Protocol):
    async def phone(self, code: str) -> str:
        """The number the code stands for (as the provider writes it)."""
        ...


def open_exchanges(
    settings: Mapping[str, IdentitySettings], session: aiohttp.ClientSession
) -> dict[str, IdentityExchange]:
    from api.identity.onetap import OneTapExchange
    from api.identity.wechat import WeChatExchange

    found: dict[str, IdentityExchange] = {}
    for name, item in settings.items():
        found[name] = (
            WeChatExchange(item, session)
            if item.kind == "wechat"
            else OneTapExchange(item, session)
        )
    return found
