"""The simulator as a billing system that *tells*: balance events to NATS JetStream.

With `hotline billing-sim --nats-url nats://…` (or `reminders.nats_url` set), every
top-up (`POST /v1/topup`) publishes a `TopupBalanceCreateEvent` and every usage
(`POST /_sim/usage {"msisdn": "+86…", "amount_minor": 500}`, which also spends the
balance) a `BalanceUsageEvent`, on subject `billing.balance.sim`, in the body
`hotline.reminders.events` reads and with `Nats-Msg-Id` = the event id. A broker that
is down costs the event, never the top-up: the simulator logs and counts it.

Every event also carries the subscriber's data and voice packages as `buckets`
(remaining, total, expiry), so the bundle reminders (`data.low`, `voice.low`,
`bundle.expiry`) work in the demo: `POST /_sim/usage {"msisdn": "+86…",
"data_bytes": 1073741824}` (or `"voice_seconds"`) spends from a package instead.
A package without a known total reports its size when first seen as the total.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import nats
from aiohttp import web

from hotline.balance.sim.store import SimBucket
from hotline.base.privacy import canonical_msisdn
from hotline.reminders.events import Allowance, BalanceEvent
from hotline.reminders.jetstream import JetStreamConfig, ensure_stream, publish_event

__all__ = ["EVENTS", "SIM_SUBJECT", "EventFeed", "emit_balance", "install"]

log = logging.getLogger(__name__)

SIM_SUBJECT = "billing.balance.sim"


class EventFeed:
    """One NATS connection publishing the simulator's balance events."""

    def __init__(self, url: str, subject: str = SIM_SUBJECT) -> None:
        self.config = JetStreamConfig(url=url)
        self.subject = subject
        self.published = 0
        self.failed = 0
        self._nc: Any = None
        self._js: Any = None

    async def start(self) -> None:
        self._nc = await nats.connect(self.config.url, max_reconnect_attempts=-1)
        self._js = self._nc.jetstream()
        await ensure_stream(self._js, self.config)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def emit(
        self,
        event_type: str,
        msisdn: str,
        balance_minor: int | None,
        currency: str,
        buckets: Sequence[SimBucket] = (),
    ) -> None:
        event = BalanceEvent(
            event_id=f"sim-{uuid.uuid4().hex}",
            event_type=event_type,
            at=time.time(),
            subscriber=canonical_msisdn(msisdn),
            balance_minor=balance_minor,
            currency=currency,
            allowances=allowances(buckets),
        )
        try:
            await publish_event(self._js, self.subject, event)
        except Exception as exc:  # the broker's trouble, not the top-up's
            self.failed += 1
            log.warning(
                "billing-sim: event %s not published (%s)", event.event_id, type(exc).__name__
            )
            return
        self.published += 1


EVENTS: web.AppKey[EventFeed] = web.AppKey("SIM_EVENTS", EventFeed)


def allowances(buckets: Sequence[SimBucket]) -> tuple[Allowance, ...]:
    """The data and voice packages as an event's buckets (bytes, seconds)."""
    return tuple(
        Allowance(
            kind=b.usage_type,
            bucket=f"pkg-{b.usage_type}-{i}",
            remaining=b.remaining,
            total=b.total if b.total is not None else b.remaining,
            valid_until=None if b.valid_until is None else b.valid_until.timestamp(),
        )
        for i, b in enumerate(buckets, 1)
        if b.usage_type in ("data", "voice")
    )


async def emit_balance(
    app: web.Application,
    event_type: str,
    msisdn: str,
    balance_minor: int | None,
    currency: str,
    buckets: Sequence[SimBucket] = (),
) -> None:
    """Publish the balance and packages after a change, when the simulator has a feed."""
    feed = app.get(EVENTS)
    if feed is not None and (balance_minor is not None or buckets):
        await feed.emit(event_type, msisdn, balance_minor, currency, buckets)


_SPEND = ("amount_minor", "data_bytes", "voice_seconds")


async def post_usage(request: web.Request) -> web.Response:
    """`POST /_sim/usage {"msisdn", "amount_minor" | "data_bytes" | "voice_seconds"}`:
    spend from the main balance or from the data/voice package."""
    from hotline.balance.sim.app import SIM

    try:
        doc = await request.json()
        msisdn = canonical_msisdn(str(doc["msisdn"]))
        spent = [name for name in _SPEND if name in doc]
        if len(spent) != 1:
            raise ValueError("exactly one of amount_minor, data_bytes, voice_seconds")
        what = spent[0]
        amount = doc[what]
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= 10**12:
            raise ValueError(f"{what}: a positive integer")
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"usage is {{msisdn, amount_minor}}: {exc}") from exc
    sub = request.app[SIM].subscribers.get(msisdn)
    if what != "amount_minor":
        kind = "data" if what == "data_bytes" else "voice"
        bucket = (
            None if sub is None else next((b for b in sub.buckets if b.usage_type == kind), None)
        )
        if sub is None or bucket is None:
            raise web.HTTPNotFound(text=f"no such subscriber (or no {kind} package)")
        if bucket.total is None:
            bucket.total = bucket.remaining  # its size as first seen: the share left is known
        bucket.remaining = max(0, bucket.remaining - amount)
        await emit_balance(
            request.app, "BalanceUsageEvent", msisdn, sub.main_minor, sub.currency, sub.buckets
        )
        return web.json_response(
            {"bucket": {"usage_type": kind, "remaining": bucket.remaining, "total": bucket.total}},
            dumps=json.dumps,
        )
    if sub is None or sub.main_minor is None:
        raise web.HTTPNotFound(text="no such subscriber (or no main balance)")
    sub.main_minor -= amount
    await emit_balance(
        request.app, "BalanceUsageEvent", msisdn, sub.main_minor, sub.currency, sub.buckets
    )
    return web.json_response(
        {"balance": {"amount_minor": sub.main_minor, "currency": sub.currency}},
        dumps=json.dumps,
    )


def install(app: web.Application, nats_url: str, subject: str = SIM_SUBJECT) -> None:
    """Publish events to `nats_url`, and accept `POST /_sim/usage`."""
    feed = EventFeed(nats_url, subject)

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await feed.start()
        yield
        await feed.close()

    app[EVENTS] = feed
    app.cleanup_ctx.append(ctx)
    app.router.add_post("/_sim/usage", post_usage)
