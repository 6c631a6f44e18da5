"""Billing events over NATS JetStream: the stream, a durable pull consumer, the worker loop.

Subjects `billing.balance.<partition>` (`reminders.subjects`, default
`billing.balance.>`) in stream `BILLING`; every message body is one event
(`hotline.reminders.events`) and carries `Nats-Msg-Id: <eventId>`, so JetStream drops a
repeat inside the stream's duplicate window. Workers share the durable consumer
`hotline-reminders` (explicit ack): more workers, more throughput, each message handled
by one worker at a time.

A message is acknowledged only after its event is durably handled (`Reminders.handle`
returned). A body that is not an event is logged pseudonymously and *terminated* (never
redelivered, never a crash loop). When the store or the outbox fails, the message is
nak'ed with a delay and the worker backs off: the events wait in JetStream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats
import orjson
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError

from hotline.base.privacy import Pseudonymizer
from hotline.reminders.events import BalanceEvent, EventError, event_body, parse_event

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["JetStreamConfig", "Worker", "ensure_stream", "publish_event"]

log = logging.getLogger(__name__)

Handler = Callable[[BalanceEvent], Awaitable[str]]
BatchHandler = Callable[[Sequence[BalanceEvent]], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """Where events come from (`reminders.*` settings)."""

    url: str
    stream: str = "BILLING"
    subjects: str = "billing.balance.>"
    durable: str = "hotline-reminders"
    ack_wait: float = 30.0
    max_deliver: int | None = None
    duplicate_window: float = 120.0
    batch: int = 100


async def ensure_stream(js: JetStreamContext, config: JetStreamConfig) -> None:
    """Create the stream if it does not exist (an operator's stream is left as it is)."""
    try:
        await js.stream_info(config.stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=config.stream,
                subjects=[config.subjects],
                duplicate_window=config.duplicate_window,
            )
        )


async def publish_event(
    js: JetStreamContext, subject: str, event: BalanceEvent, *, body: bytes | None = None
) -> Any:
    """Publish one event with its id as `Nats-Msg-Id` (the broker's de-duplication)."""
    return await js.publish(
        subject,
        body if body is not None else event_body(event),
        headers={"Nats-Msg-Id": event.event_id},
    )


def _who(data: bytes, pseudonym: Pseudonymizer) -> str:
    """The pseudonym of a bad body's subscriber if one can be read; never the number."""
    try:
        doc = orjson.loads(data)
        number = doc["event"]["logicalResource"]["id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "unknown"
    return pseudonym(number) if isinstance(number, str) and number else "unknown"


class Worker:
    """One consumer of the durable consumer group; `run()` until `stop()`."""

    def __init__(
        self,
        config: JetStreamConfig,
        handle: Handler,
        pseudonym: Pseudonymizer,
        *,
        retry_delay: float = 5.0,
        handle_batch: BatchHandler | None = None,
    ) -> None:
        self.config = config
        self.handle = handle
        self.handle_batch = handle_batch
        self.pseudonym = pseudonym
        self.retry_delay = retry_delay
        self.handled = 0
        self.rejected = 0
        self.failed = 0
        self._stopping = asyncio.Event()
        self._nc: Client | None = None
        self.ready = asyncio.Event()

    async def connect(self) -> Any:
        self._nc = await nats.connect(
            self.config.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        js = self._nc.jetstream()
        await ensure_stream(js, self.config)
        return await js.pull_subscribe(
            self.config.subjects,
            durable=self.config.durable,
            stream=self.config.stream,
            config=ConsumerConfig(
                durable_name=self.config.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.config.ack_wait,
                max_deliver=self.config.max_deliver or -1,
                max_ack_pending=max(1000, self.config.batch * 10),
            ),
        )

    async def run(self) -> None:
        sub = await self.connect()
        self.ready.set()
        if self.handle_batch is not None:
            try:
                await self._run_batches(sub)
            finally:
                if self._nc is not None:
                    await self._nc.close()
            return
        try:
            while not self._stopping.is_set():
                try:
                    messages = await sub.fetch(self.config.batch, timeout=1.0)
                except (NatsTimeout, TimeoutError):
                    continue
                alive = asyncio.get_running_loop().create_task(self._in_progress(messages))
                try:
                    for msg in messages:
                        if not await self.process(msg):
                            await asyncio.sleep(self.retry_delay)
                            break
                finally:
                    alive.cancel()
        finally:
            # close, not drain: a pull subscription's drain waits on a queue nobody
            # empties; anything fetched and not acknowledged is redelivered anyway.
            if self._nc is not None:
                await self._nc.close()

    async def _fetch(self, sub: Any) -> list[Msg]:
        try:
            messages: list[Msg] = await sub.fetch(self.config.batch, timeout=1.0)
        except (NatsTimeout, TimeoutError):
            return []
        return messages

    async def _run_batches(self, sub: Any) -> None:
        """Fetch a batch, handle it whole, acknowledge it; again. (Fetching the next
        batch ahead would overlap the database's work, but a worker would then hold
        two batches and leave a second worker idle on a small backlog.)"""
        while not self._stopping.is_set():
            messages = await self._fetch(sub)
            if messages and not await self.process_batch(messages):
                await asyncio.sleep(self.retry_delay)  # store or outbox down: wait

    async def process_batch(self, messages: list[Msg]) -> bool:
        """Handle a fetched batch at once (bad bodies terminated, the rest acknowledged
        together once handled); False when it must wait."""
        assert self.handle_batch is not None
        good: list[tuple[Msg, BalanceEvent]] = []
        for msg in messages:
            try:
                good.append((msg, parse_event(msg.data)))
            except EventError as exc:
                self.rejected += 1
                log.warning(
                    "reminders: bad event on %s for %s terminated: %s",
                    msg.subject,
                    _who(msg.data, self.pseudonym),
                    exc,
                )
                await msg.term()
        alive = asyncio.get_running_loop().create_task(self._in_progress([msg for msg, _ in good]))
        try:
            await self.handle_batch([event for _, event in good])
        except Exception:
            self.failed += 1
            log.exception(
                "reminders: a batch of %d events not handled; redelivered later", len(good)
            )
            for msg, _ in good:
                await msg.nak(delay=self.retry_delay)
            return False
        finally:
            alive.cancel()
        for msg, _ in good:
            await msg.ack()
        self.handled += len(good)
        return True

    async def _in_progress(self, messages: list[Msg]) -> None:
        """While a batch is being handled, tell JetStream every third of `ack_wait`
        that it still is: a slow batch (many crossings, a busy database) is not
        redelivered to another worker meanwhile. (A message already acknowledged
        ignores it.)"""
        while True:
            await asyncio.sleep(self.config.ack_wait / 3)
            try:
                for msg in messages:
                    await msg.in_progress()
            except Exception as exc:  # the connection's trouble: the ack will tell
                log.warning("reminders: progress not reported (%s)", type(exc).__name__)
                return

    async def process(self, msg: Msg) -> bool:
        """Handle one message; False when it must wait (the store or outbox failed)."""
        try:
            event = parse_event(msg.data)
        except EventError as exc:
            self.rejected += 1
            log.warning(
                "reminders: bad event on %s for %s terminated: %s",
                msg.subject,
                _who(msg.data, self.pseudonym),
                exc,
            )
            await msg.term()
            return True
        try:
            await self.handle(event)
        except Exception:
            self.failed += 1
            log.exception(
                "reminders: event %s for %s not handled; redelivered later",
                event.event_id,
                self.pseudonym(event.subscriber),
            )
            await msg.nak(delay=self.retry_delay)
            return False
        await msg.ack()
        self.handled += 1
        return True

    def stop(self) -> None:
        self._stopping.set()
