"""The outbox as Prometheus series: `hotline_sms_outbox_events_total{event}`.

`event` is one of `hotline.store.outbox.EVENTS` (queued, sent, retried, failed,
delivered, doubt, abandoned, requeued): a fixed vocabulary, never a number, a key or a
text. Registered on the app's own registry by `outbox_metrics_ctx`, which the SMS
channel runs after the core has opened the outbox; every label starts at 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Counter

from hotline.store.outbox import EVENTS
from hotline.web.keys import MESSAGES, METRICS

__all__ = ["outbox_metrics_ctx"]


async def outbox_metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    outbox = app.get(MESSAGES)
    if outbox is None:
        yield
        return
    events = Counter(
        "hotline_sms_outbox_events",
        "Outgoing SMS by what happened to them (queued, sent, delivered, failed, …).",
        ["event"],
        registry=app[METRICS].registry,
    )
    for event in EVENTS:
        events.labels(event)

    def count(event: str) -> None:
        events.labels(event).inc()

    outbox.observers.append(count)
    yield
    outbox.observers.remove(count)
