"""Typed application keys: every shared resource the app holds, by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from hotline.base.config import Settings
from hotline.base.metrics import Metrics
from hotline.base.privacy import Pseudonymizer
from hotline.web.ratelimit import RateLimiter

if TYPE_CHECKING:
    from hotline.balance.provider import BalanceStack
    from hotline.endpoints import Endpoints
    from hotline.flow.engine import Engine
    from hotline.flow.events import ChannelEvent
    from hotline.flow.model import Flow
    from hotline.flow.screen import Turn
    from hotline.plans.desk import PlansDesk
    from hotline.store.outbox import Outbox
    from hotline.store.sessions import SessionStore
    from hotline.web.channels import ChannelPlugin

__all__ = [
    "BALANCE",
    "CHANNELS",
    "ENDPOINTS",
    "ENGINE",
    "FLOWS_RELOADED",
    "MESSAGES",
    "METRICS",
    "PLANS",
    "PSEUDONYM",
    "RATE_LIMITER",
    "READINESS",
    "SESSIONS",
    "SETTINGS",
    "SPEECH_TEXT",
    "SUPERVISOR",
    "TURN_OBSERVERS",
    "TurnObserver",
]

SETTINGS = web.AppKey("SETTINGS", Settings)
PSEUDONYM = web.AppKey("PSEUDONYM", Pseudonymizer)
SESSIONS: web.AppKey[SessionStore] = web.AppKey("SESSIONS")
BALANCE: web.AppKey[BalanceStack] = web.AppKey("BALANCE")
ENGINE: web.AppKey[Engine] = web.AppKey("ENGINE")
#: The SMS outbox (`Services.messages`); the SMS channel's sender delivers it.
MESSAGES: web.AppKey[Outbox] = web.AppKey("MESSAGES")
#: The declared `http_endpoints` inside their resilience layers (`Services.http`).
ENDPOINTS: web.AppKey[Endpoints] = web.AppKey("ENDPOINTS")
#: Plans, offers and orders (`Services.plans`, `hotline.plans`).
PLANS: web.AppKey[PlansDesk] = web.AppKey("PLANS")
#: The channel plug-ins this app mounted, in mount order (`hotline.web.channels`).
CHANNELS: web.AppKey[tuple[ChannelPlugin, ...]] = web.AppKey("CHANNELS")
#: Async callbacks run in the background after a flow reload installed new flows (a
#: channel registers one at setup, e.g. to warm the new prompts). The list exists on every
#: app `create_app` builds; a failing callback is logged and never fails the reload.
FLOWS_RELOADED: web.AppKey[list[Callable[[web.Application, list[Flow]], Awaitable[None]]]] = (
    web.AppKey("FLOWS_RELOADED")
)
#: Set by a voice channel: clip URL → the sentence it speaks (None if not its clip).
#: In-process dialogue runs use it to check `expect` against what a caller hears.
SPEECH_TEXT: web.AppKey[Callable[[str], str | None]] = web.AppKey("SPEECH_TEXT")
#: Told about every turn a channel took: the event, the engine's `Turn` (its screen, the
#: step's events — `started`, `invalid:<state>`, `action:<name>:<outcome>`, …;
#: `("apology",)` when the turn failed — and the saved record) and whether the channel's
#: reply closed the conversation. Optional and absent by default: only the web simulator
#: (`simulator`) and operator analytics (`analytics.enabled`) register one, so nothing is
#: kept about turns otherwise. An observer must be quick (it runs on the request path)
#: and must not raise.
TurnObserver = Callable[["ChannelEvent", "Turn", bool], None]
TURN_OBSERVERS: web.AppKey[list[TurnObserver]] = web.AppKey("TURN_OBSERVERS")
METRICS = web.AppKey("METRICS", Metrics)
RATE_LIMITER = web.AppKey("RATE_LIMITER", RateLimiter)
# name -> async check; /readyz passes when every one returns True.
READINESS: web.AppKey[dict[str, Callable[[], Awaitable[bool]]]] = web.AppKey("READINESS")
# pid of the `hotline serve --workers N` supervisor, when this worker has one.
SUPERVISOR = web.AppKey("SUPERVISOR", int)
