"""One SMPP 3.4 ESME session kept up for the app's lifetime: bind, check, reconnect.

The wire (framing, sequence numbers, `enquire_link` timers, `generic_nack`, the automatic
`deliver_sm_resp`) is the `smpp34` library's Rust core; `SmppLink` is the part every
hotline bind shares — the SMS channel's SMSC session (`sms.dialects.smpp.SmppTransport`)
and the USSD channel's bind to a USSD gateway (`ussd.smpp`):

- Nagle's algorithm off on the session's socket (`hotline.links.nodelay`: the library
  offers no option, and small request/response PDUs are what Nagle holds back);
- one `bind_transceiver` session kept up by a task: it binds again with jittered
  exponential backoff when the session drops (a `generic_nack` — `reset()` — or an
  unbind ends it too), and checks the link is alive every `enquire_link` seconds;
- each inbound `deliver_sm` handed to `on_deliver` in its own task, at most twice
  `window` at a time (the library has already answered it with `deliver_sm_resp`): a
  handler that answers with a `submit_sm` holds its place until the `submit_sm_resp`,
  and with only `window` places a full window of replies waiting for theirs stopped
  the link reading the next `deliver_sm` — a wait every message behind them paid;
- `smsc`, the bound session (None while there is none), for the owner's `submit_sm`;
- `divert(claims, handler)`: another channel's `deliver_sm`s on a shared bind (the USSD
  channel's dialogue steps on the SMS channel's SMSC session, `ussd_smpp.share_sms_bind`)
  go to that channel's handler instead of the owner's.

The password is never logged; neither is a number or a text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import smpp34
from aiohttp import web

from hotline.base.config import SmppSettings
from hotline.links import reconnect
from hotline.links.nodelay import peer_addresses, tcp_nodelay

__all__ = ["SMPP_LINK", "Claims", "DeliverHandler", "SmppLink"]

log = logging.getLogger(__name__)

DeliverHandler = Callable[[smpp34.DeliverSmEvent], Awaitable[None]]
#: Whether a `deliver_sm` is for a diverted handler (e.g. it carries `ussd_service_op`).
Claims = Callable[[smpp34.DeliverSmEvent], bool]


class SmppLink:
    """One transceiver session to an SMPP peer, bound again whenever it drops."""

    def __init__(
        self, smpp: SmppSettings, on_deliver: DeliverHandler | None = None, *, name: str = "smpp"
    ) -> None:
        self.smpp = smpp
        self.on_deliver = on_deliver
        self.name = name  # in log lines and the task's name: which bind this is
        self._smsc: smpp34.Smsc | None = None
        self._bound = asyncio.Event()
        self._reset = asyncio.Event()  # a generic_nack: drop the session, bind again
        self._inbound = asyncio.Semaphore(2 * smpp.window)
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._diverts: list[tuple[Claims, DeliverHandler]] = []
        self.binds = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-session")

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    @property
    def smsc(self) -> smpp34.Smsc | None:
        """The bound session, or None between sessions."""
        return self._smsc

    def divert(self, claims: Claims, handler: DeliverHandler) -> None:
        """Hand the `deliver_sm`s that `claims` to `handler` (a channel sharing this bind)."""
        self._diverts.append((claims, handler))

    def reset(self) -> None:
        """Drop the session and bind again (after a `generic_nack`)."""
        self._reset.set()

    async def wait_bound(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._bound.wait()
        return self._bound.is_set()

    def _client(self) -> smpp34.Client:
        return smpp34.Client(
            self.smpp.host,
            self.smpp.port,
            self.smpp.system_id,
            self.smpp.password.get_secret_value(),
            bind_type="TRX",
            system_type=self.smpp.system_type,
            window_size=self.smpp.window,
            connect_timeout_ms=int(min(self.smpp.submit_timeout, 10.0) * 1000),
        )

    async def _run(self) -> None:
        where = f"{self.smpp.host}:{self.smpp.port}"
        attempt = 0
        while True:
            client = self._client()
            try:
                smsc = await client.connect()
            except Exception as exc:  # refused, timed out, bind rejected
                delay = reconnect.backoff(attempt, self.smpp.reconnect_min, self.smpp.reconnect_max)
                attempt += 1
                log.warning(
                    "%s: bind to %s failed (%s); again in %.1fs",
                    self.name,
                    where,
                    type(exc).__name__,
                    delay,
                )
                with contextlib.suppress(Exception):
                    await client.stop()
                await asyncio.sleep(delay)
                continue
            # smpp34 leaves Nagle on: every answer would wait ~40 ms for a delayed ACK.
            if not tcp_nodelay(
                self.smpp.port, await peer_addresses(self.smpp.host, self.smpp.port)
            ):
                log.debug("%s: no socket to %s found to set TCP_NODELAY on", self.name, where)
            self.binds += 1
            self._smsc = smsc
            self._reset.clear()
            self._bound.set()
            log.info("%s: bound as transceiver to %s (bind %d)", self.name, where, self.binds)
            began = time.monotonic()
            try:
                await self._session(client, smsc)
            finally:
                self._bound.clear()
                self._smsc = None
                with contextlib.suppress(Exception):
                    await client.stop()
            attempt = reconnect.next_attempt(attempt, time.monotonic() - began)
            delay = reconnect.backoff(attempt, self.smpp.reconnect_min, self.smpp.reconnect_max)
            log.warning("%s: session to %s ended; binding again in %.1fs", self.name, where, delay)
            await asyncio.sleep(delay)

    async def _session(self, client: smpp34.Client, smsc: smpp34.Smsc) -> None:
        """Read inbound PDUs until the session ends; every `enquire_link` seconds make
        sure the link is alive (the library sends the keepalives)."""
        reader = asyncio.ensure_future(self._read(smsc))
        reset = asyncio.ensure_future(self._reset.wait())
        try:
            while not reader.done():
                done, _ = await asyncio.wait(
                    {reader, reset},
                    timeout=self.smpp.enquire_link,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if reset in done:
                    log.warning("%s: generic_nack from the peer; binding again", self.name)
                    with contextlib.suppress(Exception):
                        await smsc.unbind()
                    break
                if done:
                    break
                try:
                    alive = await client.is_alive()
                except Exception:
                    alive = False
                if not alive:
                    log.warning("%s: link is not alive; reconnecting", self.name)
                    break
        finally:
            for task in (reader, reset):
                task.cancel()
            # Bounded: the library's `next()` may hold on to a cancel until its client stops
            # (the caller's `finally` stops it), and an unbounded wait here hung shutdown.
            await asyncio.wait({reader, reset}, timeout=1.0)

    async def _read(self, smsc: smpp34.Smsc) -> None:
        while True:
            try:
                event = await smsc.next()
            except Exception as exc:
                log.warning("%s: reading failed (%s)", self.name, type(exc).__name__)
                return
            if isinstance(event, smpp34.Disconnected):
                return
            handler = next((h for claims, h in self._diverts if claims(event)), self.on_deliver)
            if handler is None:
                continue
            await self._inbound.acquire()
            task = asyncio.create_task(self._handle(event, handler))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, event: smpp34.DeliverSmEvent, handler: DeliverHandler) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("%s: handling a deliver_sm failed", self.name)
        finally:
            self._inbound.release()

    async def close(self) -> None:
        task, self._task = self._task, None
        await reconnect.stop(task, self._handlers)


#: The app's bind to the operator's SMSC, published by the channel that owns it (the SMS
#: channel, `sms.transport: smpp`) so another channel can share it through `divert`.
SMPP_LINK = web.AppKey("SMPP_LINK", SmppLink)
