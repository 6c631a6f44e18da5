"""Reminders in the app and in the worker: built from settings, the event route.

`open_reminders(settings, messages, pseudonym)` builds the service over its store;
`setup(app)` adds the cleanup context (the store, the sweeper, and — with
`reminders.consume_in_app` — a JetStream worker) and `POST /reminders/events` when
`reminders.event_token` is set. The core's app factory calls `setup`; nothing here is
imported by a channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from aiohttp import web

from hotline.base.config import Settings
from hotline.base.privacy import Pseudonymizer
from hotline.flow.services import MessagesService
from hotline.reminders.events import EventError, parse_event
from hotline.reminders.jetstream import JetStreamConfig, Worker
from hotline.reminders.quiet import QuietHours, parse_hhmm
from hotline.reminders.service import Reminders
from hotline.reminders.store import ReminderStore
from hotline.web.keys import MESSAGES, PSEUDONYM, SETTINGS

__all__ = ["EVENTS_PATH", "REMINDERS", "jetstream_config", "open_reminders", "setup"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/reminders/events"
#: The reminders service of this app (`Services.reminders`); absent when disabled.
REMINDERS: web.AppKey[Reminders] = web.AppKey("REMINDERS")
_MAX_EVENT_BYTES = 16384


def open_reminders(
    settings: Settings, messages: MessagesService, pseudonym: Pseudonymizer
) -> Reminders:
    cfg = settings.reminders
    store = ReminderStore(cfg.database_url, path=cfg.database_path)
    quiet = QuietHours(
        parse_hhmm(cfg.quiet_start), parse_hhmm(cfg.quiet_end), ZoneInfo(settings.timezone)
    )
    return Reminders(
        store,
        messages,
        quiet=quiet,
        pseudonym=pseudonym,
        thresholds=cfg.thresholds,
        percents=cfg.percents,
        expiry_days=cfg.expiry_days,
        currency=cfg.currency,
        keyword_off=cfg.keyword_off,
        daily_cap=cfg.daily_cap,
        stuck_after=cfg.stuck_after,
    )


def jetstream_config(settings: Settings) -> JetStreamConfig | None:
    cfg = settings.reminders
    if not cfg.nats_url:
        return None
    return JetStreamConfig(
        url=cfg.nats_url,
        stream=cfg.stream,
        subjects=cfg.subjects,
        durable=cfg.durable,
        ack_wait=cfg.ack_wait,
        max_deliver=cfg.max_deliver,
        duplicate_window=cfg.duplicate_window,
        batch=cfg.batch,
    )


async def _reminders_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    reminders = open_reminders(settings, app[MESSAGES], app[PSEUDONYM])
    app[REMINDERS] = reminders
    sweeper = asyncio.create_task(reminders.run_sweeper(settings.reminders.sweep_every))
    config = jetstream_config(settings)
    worker: Worker | None = None
    consuming: asyncio.Task[None] | None = None
    if config is not None and settings.reminders.consume_in_app:
        worker = Worker(
            config, reminders.handle, app[PSEUDONYM], handle_batch=reminders.handle_batch
        )
        consuming = asyncio.create_task(worker.run())
    yield
    sweeper.cancel()
    if worker is not None and consuming is not None:
        worker.stop()  # finishes the batch in hand, then drains the connection
        with contextlib.suppress(Exception):  # TimeoutError: `consuming` is cancelled
            async with asyncio.timeout(10):
                await consuming
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await reminders.store.close()


async def post_event(request: web.Request) -> web.Response:
    """`POST /reminders/events`: one event body, as on JetStream. 202 when handled
    (durably), 400 with the reason for a bad body, 503 when the store is down."""
    settings = request.app[SETTINGS]
    token = settings.reminders.event_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token is None or not hmac.compare_digest(given, token.get_secret_value()):
        return web.json_response({"error": "unauthorized"}, status=401)
    if request.content_length is not None and request.content_length > _MAX_EVENT_BYTES:
        return web.json_response({"error": "body too large"}, status=413)
    body = await request.content.read(_MAX_EVENT_BYTES + 1)
    if len(body) > _MAX_EVENT_BYTES:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        event = parse_event(body)
    except EventError as exc:
        log.warning("reminders: bad event posted: %s", exc)
        return web.json_response({"error": str(exc)}, status=400)
    try:
        outcome = await request.app[REMINDERS].handle(event)
    except Exception:
        log.exception(
            "reminders: posted event %s for %s not handled",
            event.event_id,
            request.app[PSEUDONYM](event.subscriber),
        )
        return web.json_response({"error": "not stored; send it again later"}, status=503)
    return web.json_response({"eventId": event.event_id, "outcome": outcome}, status=202)


def setup(app: web.Application) -> None:
    """Wire reminders into the app (after the outbox's cleanup context)."""
    settings = app[SETTINGS]
    if not settings.reminders.enabled:
        return
    app.cleanup_ctx.append(_reminders_ctx)
    if settings.reminders.event_token is not None:
        app.router.add_post(EVENTS_PATH, post_event)
