"""hotline as an Osmocom External USSD Entity (EUSE): a GSUP client of osmo-hlr.

osmo-hlr routes dialled codes to an EUSE by name (`euse hotline`, `ussd route prefix
*100# external hotline`); we connect to its GSUP port, identify as `EUSE-hotline` in the
IPA identity exchange, and answer each PROC_SS_REQUEST the HLR forwards from the MSC:

- **BEGIN** with a processUnstructuredSS-Request invoke: the dialled string is the
  entry (`*100*1#` lands on the balance directly); the session takes the same turn as
  over HTTP — flows, pagination, navigation — laid out within this bearer's budget
  (`ussd_gsup.gsm7_limit` / `ucs2_limit`: libosmocore drops replies over 112 octets);
- a screen with more to come goes back as a PROC_SS_REQUEST, state CONTINUE, with an
  unstructuredSS-Request invoke; the subscriber's answer comes as CONTINUE with its
  result; the last screen is a PROC_SS_RESULT, state END, with the ReturnResult of the
  original invoke. The request's message class is echoed (the HLR drops a reply whose
  class differs);
- **END** from the MSC (the subscriber hung up) ends the session with no answer;
- anything we cannot place — a facility that is no 04.80 component, an answer for a
  session we do not know — is logged and answered as a result, state END: a
  ReturnError (the HLR only logs a PROC_SS_ERROR), or the apology sentence when the
  dialogue is ours.

The MSC sends the IMSI only: the subscriber's number comes from the request's MSISDN IE
when present, else from osmo-hlr's CTRL interface (`subscriber.by-imsi-<IMSI>.msisdn`),
else the session runs as `imsi-<IMSI>` (the flows then find no account). Sessions live
in this worker (the HLR keeps a dialogue on the connection that opened it) and in the
session store under the IMSI's pseudonym. The link reconnects, with jittered backoff,
whenever the HLR goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from cachetools import TTLCache

from hotline.base.config import UssdGsupSettings
from hotline.flow.events import ChannelEvent, EventKind
from hotline.flow.screen import Screen
from hotline.links import reconnect
from hotline.web.keys import ENGINE, PSEUDONYM, SETTINGS
from hotline.web.turns import take_turn
from ussd import gsup_wire as wire
from ussd.bearer import BearerLayout
from ussd.budget import Limits
from ussd.page import UssdPage

__all__ = ["USSD_GSUP", "GsupEuse", "ctrl_get", "setup"]

log = logging.getLogger(__name__)

CHANNEL = "ussd"
DIALECT = "gsup"
MAX_DIALOGUES = 100_000


@dataclass(slots=True)
class _Dialogue:
    entry: str
    subscriber: str
    invoke_id: int  # the subscriber's processUnstructuredSS-Request: our last screen answers it
    next_invoke: int = 1


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(3)
    size, proto = struct.unpack(">HB", header)
    return proto, await reader.readexactly(size)


async def ctrl_get(host: str, port: int, variable: str, timeout: float = 2.0) -> str | None:
    """One `GET` on an Osmocom CTRL interface (IPA-framed, extension 0x00); None on an
    error reply or no answer."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = f"GET 1 {variable}".encode("ascii")
                writer.write(wire.frame(wire.IPA_OSMO, bytes((wire.OSMO_CTRL,)) + request))
                await writer.drain()
                while True:
                    proto, payload = await _read_frame(reader)
                    if proto == wire.IPA_OSMO and payload[:1] == bytes((wire.OSMO_CTRL,)):
                        break
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    words = payload[1:].decode("ascii", "replace").split(" ", 3)
    if len(words) == 4 and words[0] == "GET_REPLY" and words[2] == variable:
        value = words[3].strip()
        return value if value and value != "none" else None
    return None


class GsupEuse:
    """The EUSE connection to osmo-hlr and the dialogues on it."""

    def __init__(self, app: web.Application, settings: UssdGsupSettings) -> None:
        self.app = app
        self.settings = settings
        self.name = f"EUSE-{settings.euse}"
        ttl = app[SETTINGS].ussd.session_ttl
        self.dialogues: TTLCache[str, _Dialogue] = TTLCache(maxsize=MAX_DIALOGUES, ttl=ttl)
        self.connects = 0
        self._connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        #: This bearer's layout (libosmocore's 112-octet budget, no prefix to reserve).
        self.layout = BearerLayout(app, Limits(settings.gsm7_limit, settings.ucs2_limit))

    # -- the connection -----------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gsup-euse")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        return self._connected.is_set()

    async def _run(self) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        attempt = 0
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    self.settings.host, self.settings.port
                )
            except OSError as exc:
                delay = reconnect.backoff(
                    attempt, self.settings.reconnect_min, self.settings.reconnect_max
                )
                attempt += 1
                log.warning(
                    "gsup: connecting to %s failed (%s); again in %.1fs",
                    where,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self._writer = writer
            began = asyncio.get_running_loop().time()
            try:
                await self._session(reader, writer)
            finally:
                self._connected.clear()
                self._writer = None
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            attempt = reconnect.next_attempt(attempt, asyncio.get_running_loop().time() - began)
            delay = reconnect.backoff(
                attempt, self.settings.reconnect_min, self.settings.reconnect_max
            )
            log.warning("gsup: connection to %s ended; again in %.1fs", where, delay)
            await asyncio.sleep(delay)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                proto, payload = await _read_frame(reader)
            except (asyncio.IncompleteReadError, OSError):
                return
            if proto == wire.IPA_CCM and payload:
                await self._ccm(writer, payload)
            elif proto == wire.IPA_OSMO and payload[:1] == bytes((wire.OSMO_GSUP,)):
                task = asyncio.create_task(self._gsup(payload[1:]))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _ccm(self, writer: asyncio.StreamWriter, payload: bytes) -> None:
        kind = payload[0]
        if kind == wire.CCM_PING:
            writer.write(wire.frame(wire.IPA_CCM, bytes((wire.CCM_PONG,))))
        elif kind == wire.CCM_ID_GET:
            writer.write(wire.frame(wire.IPA_CCM, wire.id_resp(payload[1:], self.name)))
            writer.write(wire.frame(wire.IPA_CCM, bytes((wire.CCM_ID_ACK,))))
        elif kind == wire.CCM_ID_ACK and not self._connected.is_set():
            self.connects += 1
            self._connected.set()
            log.info(
                "gsup: registered with the HLR as %s (connection %d)", self.name, self.connects
            )
        await writer.drain()

    async def _send(self, message: wire.GsupMessage) -> None:
        writer = self._writer
        if writer is None:
            log.warning("gsup: not connected; an answer was not sent")
            return
        payload = bytes((wire.OSMO_GSUP,)) + message.encode()
        writer.write(wire.frame(wire.IPA_OSMO, payload))
        with contextlib.suppress(OSError):
            await writer.drain()

    async def close(self) -> None:
        task, self._task = self._task, None
        await reconnect.stop(task, self._handlers)

    # -- the dialogues --------------------------------------------------------------

    async def _gsup(self, data: bytes) -> None:
        try:
            request = wire.GsupMessage.decode(data)
        except ValueError as exc:
            log.warning("gsup: a message we cannot read (%s); ignored", exc)
            return
        if request.msg_type not in (wire.PROC_SS_REQUEST, wire.PROC_SS_RESULT):
            log.info("gsup: message type 0x%02X ignored", request.msg_type)
            return
        if request.session_id is None:
            log.warning("gsup: PROC_SS without a session id; ignored")
            return
        pseudonym = self.app[PSEUDONYM](request.imsi)
        key = f"gsup:{pseudonym}:{request.session_id}"
        try:
            await self._dialogue(request, key, pseudonym)
        except Exception:
            log.exception("gsup: a dialogue step failed (subscriber %s)", pseudonym)
            await self._answer(request, key, self.app[ENGINE].apology(), None)

    async def _dialogue(self, request: wire.GsupMessage, key: str, pseudonym: str) -> None:
        state = request.session_state
        if state == wire.END or request.ss_info is None:
            dialogue = self.dialogues.pop(key, None)
            if dialogue is not None and state == wire.END:  # the subscriber hung up
                await take_turn(self.app, self._event(key, dialogue, "hangup"), self.layout.lay_out)
            return
        try:
            component = wire.decode_component(request.ss_info)
        except ValueError as exc:
            log.warning("gsup: %s (subscriber %s); refused", exc, pseudonym)
            await self._error(request, 0)
            return
        if state == wire.BEGIN:
            if component.kind != "invoke" or component.opcode != wire.OP_PROCESS_USS_REQ:
                log.warning("gsup: BEGIN without a USSD request (subscriber %s)", pseudonym)
                await self._error(request, component.invoke_id)
                return
            dialogue = _Dialogue(
                entry=(component.text or "").strip(),
                subscriber=await self._subscriber(request),
                invoke_id=component.invoke_id,
                next_invoke=(component.invoke_id + 1) % 128,
            )
            self.dialogues[key] = dialogue
            event = self._event(key, dialogue, "start")
        else:
            known = self.dialogues.get(key)
            if known is None or component.kind != "returnResult" or component.text is None:
                log.warning(
                    "gsup: an answer for a dialogue we do not know (subscriber %s); closed",
                    pseudonym,
                )
                if known is None:
                    await self._error(request, component.invoke_id)
                else:
                    self.dialogues.pop(key, None)
                    await self._answer(request, key, self.app[ENGINE].apology(), known)
                return
            dialogue = known
            event = self._event(key, dialogue, "input", component.text.strip())
        _, page = await take_turn(self.app, event, self.layout.lay_out)
        await self._reply(request, key, page, dialogue)

    async def _subscriber(self, request: wire.GsupMessage) -> str:
        if request.msisdn:
            return request.msisdn
        if self.settings.ctrl_port:
            variable = f"subscriber.by-imsi-{request.imsi}.msisdn"
            msisdn = await ctrl_get(self.settings.host, self.settings.ctrl_port, variable)
            if msisdn:
                return msisdn
        return f"imsi-{request.imsi}"

    def _event(
        self, key: str, dialogue: _Dialogue, kind: EventKind, text: str = ""
    ) -> ChannelEvent:
        return ChannelEvent(
            channel=CHANNEL,
            dialect=DIALECT,
            session_id=key,
            subscriber=dialogue.subscriber,
            kind=kind,
            text=text,
            entry=dialogue.entry,
        )

    async def _answer(
        self, request: wire.GsupMessage, key: str, screen: Screen, dialogue: _Dialogue | None
    ) -> None:
        page = self.layout.lay_out(screen)
        invoke = dialogue.invoke_id if dialogue else 0
        await self._send(self._result(request, wire.return_result(invoke, page.text)))

    async def _reply(
        self, request: wire.GsupMessage, key: str, page: UssdPage, dialogue: _Dialogue
    ) -> None:
        if page.ends:
            self.dialogues.pop(key, None)
            await self._send(
                self._result(request, wire.return_result(dialogue.invoke_id, page.text))
            )
            return
        invoke, dialogue.next_invoke = dialogue.next_invoke, (dialogue.next_invoke + 1) % 128
        await self._send(
            wire.GsupMessage(
                msg_type=wire.PROC_SS_REQUEST,
                imsi=request.imsi,
                session_id=request.session_id,
                session_state=wire.CONTINUE,
                ss_info=wire.invoke_ussr(invoke, page.text),
                message_class=request.message_class,
                destination_name=request.source_name,
            )
        )

    def _result(self, request: wire.GsupMessage, ss_info: bytes) -> wire.GsupMessage:
        return wire.GsupMessage(
            msg_type=wire.PROC_SS_RESULT,
            imsi=request.imsi,
            session_id=request.session_id,
            session_state=wire.END,
            ss_info=ss_info,
            message_class=request.message_class,
            destination_name=request.source_name,
        )

    async def _error(self, request: wire.GsupMessage, invoke_id: int) -> None:
        """An error travels as a result with a ReturnError (the HLR drops PROC_SS_ERROR)."""
        await self._send(self._result(request, wire.return_error(invoke_id)))


USSD_GSUP = web.AppKey("USSD_GSUP", GsupEuse)


async def _gsup_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].ussd_gsup
    if settings is None:
        yield
        return
    euse = GsupEuse(app, settings)
    app[USSD_GSUP] = euse
    euse.start()
    yield
    await euse.close()


def setup(app: web.Application) -> None:
    """Connect to osmo-hlr for the app's lifetime when `ussd_gsup` is configured."""
    app.cleanup_ctx.append(_gsup_ctx)
