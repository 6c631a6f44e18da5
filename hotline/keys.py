"""Typed application keys: every shared resource the app holds, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hotline.config import Settings
from hotline.privacy import Pseudonymizer

if TYPE_CHECKING:
    from hotline.balance.provider import BalanceProvider
    from hotline.flow.engine import Engine
    from hotline.sessions import SessionStore

__all__ = ["BALANCE", "ENGINE", "PSEUDONYM", "SESSIONS", "SETTINGS"]

SETTINGS = web.AppKey("SETTINGS", Settings)
PSEUDONYM = web.AppKey("PSEUDONYM", Pseudonymizer)
SESSIONS: web.AppKey[SessionStore] = web.AppKey("SESSIONS")
BALANCE: web.AppKey[BalanceProvider] = web.AppKey("BALANCE")
ENGINE: web.AppKey[Engine] = web.AppKey("ENGINE")
