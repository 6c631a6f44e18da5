"""A test SMSC not written by this project: `smpp34.Server` (the library's SMSC side) in
its own process, so stopping it is a real stop (SIGKILL: the TCP session dies).

The process (`python tests/sms/smsc.py PORT`) reads commands on stdin and writes
events on stdout, one JSON object a line:

- commands: `{"mo": {"source", "dest", "hex", "data_coding", "tlvs", "service_type"}}`
  — a `deliver_sm` (an MO, or a USSD gateway's dialogue step) to every bound ESME; `{"refuse": STATUS, "times": N}` — answer the next N `submit_sm`
  with STATUS instead of accepting (acknowledged with `{"refusing": N}`);
  `{"refuse_part": N, "status": STATUS}` — answer every `submit_sm` that is part N of a
  concatenated message (its UDH) with STATUS;
  `{"undeliverable": N}` — the next N receipts say `stat:UNDELIV` (message_state 5);
  both acknowledged with `{"configured": 1}`;
- events: `{"ready": PORT}`, `{"bound": SYSTEM_ID}`, `{"unbound": 1}`,
  `{"submit": {...}}` (destination, source, data_coding, esm_class, hex,
  registered_delivery, service_type, tlvs, message_id or status), `{"mo_resp": STATUS}`,
  `{"receipt_resp": STATUS}`.

Every accepted `submit_sm` asking for a receipt gets one: `id:… stat:DELIVRD` text
plus the `receipted_message_id` and `message_state` TLVs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import smpp34

SCRIPT = Path(__file__).resolve()


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _serve(port: int) -> None:
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="TESTSMSC")
    await server.start()
    sessions: dict[str, smpp34.Esme] = {}
    refusals: list[int] = []
    part_refusals: dict[int, int] = {}  # part number → status
    undeliverable = [0]  # receipts still to say UNDELIV
    tasks: set[asyncio.Task[None]] = set()
    counter = 0

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _emit(error=repr(task.exception()))

    def spawn(work: Any) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(done)

    async def receipt(session: str, event: smpp34.SubmitSmEvent, message_id: str) -> None:
        stat, state = "DELIVRD", b"\x02"
        if undeliverable[0] > 0:
            undeliverable[0] -= 1
            stat, state = "UNDELIV", b"\x05"
        text = f"id:{message_id} sub:001 dlvrd:001 submit date:2612060000 done date:2612060000 stat:{stat} err:000 text:"
        for _ in range(100):  # the Esme event may come after the session's first submit
            if session in sessions:
                break
            await asyncio.sleep(0.05)
        resp = await sessions[session].deliver_sm(
            event.source_addr,
            text.encode("ascii"),
            source_addr=event.destination_addr,
            esm_class=0x04,
            tlvs=[
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\x00"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, state),
            ],
        )
        _emit(receipt_resp=resp.command_status)

    async def mo(command: dict[str, Any]) -> None:
        for _ in range(100):  # a command right after a bind may come before the Esme event
            if sessions:
                break
            await asyncio.sleep(0.05)
        for esme in list(sessions.values()):
            resp = await esme.deliver_sm(
                command["dest"],
                bytes.fromhex(command["hex"]),
                source_addr=command["source"],
                data_coding=int(command.get("data_coding", 0)),
                esm_class=int(command.get("esm_class", 0)),
                service_type=command.get("service_type", ""),
                tlvs=[
                    smpp34.Tlv(tag, bytes.fromhex(value)) for tag, value in command.get("tlvs", [])
                ],
            )
            _emit(mo_resp=resp.command_status)

    async def commands() -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            if "mo" in command:
                spawn(mo(command["mo"]))
            elif "refuse_part" in command:
                part_refusals[int(command["refuse_part"])] = int(command["status"])
                if not part_refusals[int(command["refuse_part"])]:  # status 0: accept again
                    del part_refusals[int(command["refuse_part"])]
                _emit(configured=1)  # `SmscPeer.configure` waits for this
            elif "undeliverable" in command:
                undeliverable[0] += int(command["undeliverable"])
                _emit(configured=1)
            elif "refuse" in command:
                refusals.extend([int(command["refuse"])] * int(command.get("times", 1)))
                _emit(refusing=len(refusals))  # `SmscPeer.refuse` waits for this

    spawn(commands())
    _emit(ready=port)
    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            sessions[event.session_id] = event
            _emit(bound=event.system_id)
        elif isinstance(event, smpp34.Unbound):
            sessions.pop(event.session_id, None)
            _emit(unbound=1)
        else:
            record: dict[str, Any] = {
                "destination": event.destination_addr,
                "source": event.source_addr,
                "data_coding": event.data_coding,
                "esm_class": event.esm_class,
                "hex": event.short_message.hex(),
                "registered_delivery": event.registered_delivery,
                "service_type": event.service_type,
                "tlvs": [[tlv.tag, bytes(tlv.value).hex()] for tlv in event.tlvs],
            }
            octets = event.short_message
            part = octets[5] if event.esm_class & 0x40 and len(octets) > 5 else 0
            if refusals or part in part_refusals:
                status = part_refusals[part] if part in part_refusals else refusals.pop(0)
                event.reject(status)
                _emit(submit={**record, "status": status})
                continue
            counter += 1
            message_id = f"T{counter:06d}"
            event.accept(message_id)
            _emit(submit={**record, "message_id": message_id})
            if event.registered_delivery & 0x01:
                spawn(receipt(event.session_id, event, message_id))


@dataclass
class Submit:
    """One `submit_sm` as the SMSC saw it."""

    destination: str
    source: str
    data_coding: int
    esm_class: int
    octets: bytes
    registered_delivery: int
    message_id: str | None = None
    status: int | None = None

    @property
    def udh(self) -> bytes:
        return self.octets[: 1 + self.octets[0]] if self.esm_class & 0x40 else b""

    @property
    def body(self) -> bytes:
        return self.octets[len(self.udh) :]

    @property
    def text(self) -> str:
        if self.data_coding == 8:
            return self.body.decode("utf-16-be")
        from sms.dialects.smpp import gsm7_text

        return gsm7_text(self.body)


@dataclass
class SmscPeer:
    """The test SMSC process: start, stop (killed), start again on the same port."""

    port: int
    events: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.process is None
        start = len(self.events)
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        loop = asyncio.get_running_loop()
        process = self.process

        async def read() -> None:
            assert process.stdout is not None
            while True:
                line = await loop.run_in_executor(None, process.stdout.readline)
                if not line:
                    return
                self.events.append(json.loads(line))

        self._reader = asyncio.ensure_future(read())
        async with asyncio.timeout(10):
            while not any(e.get("ready") == self.port for e in self.events[start:]):
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None
        if self._reader is not None:
            await self._reader
            self._reader = None

    def command(self, **command: Any) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    async def refuse(self, status: int, times: int = 1) -> None:
        """Answer the next `times` `submit_sm` with `status`, from as soon as this returns
        (the process has read the command: a submit sent next cannot overtake it)."""
        acks = sum(1 for e in list(self.events) if "refusing" in e)
        self.command(refuse=status, times=times)
        await self.count(lambda e: "refusing" in e, acks + 1)

    async def configure(self, **command: Any) -> None:
        """Send a `refuse_part` or `undeliverable` command and wait until the process has
        read it (a submit sent next cannot overtake it on a busy machine)."""
        acks = sum(1 for e in list(self.events) if "configured" in e)
        self.command(**command)
        await self.count(lambda e: "configured" in e, acks + 1)

    def send_mo(
        self, source: str, dest: str, text: str, tlvs: tuple[tuple[int, bytes], ...] = ()
    ) -> None:
        from sms.segments import encoding_of

        coding = 0 if encoding_of(text) == "gsm7" else 8
        from sms.dialects.smpp import encode_part

        self.command(
            mo={
                "source": source,
                "dest": dest,
                "hex": encode_part(text, coding).hex(),
                "data_coding": coding,
                "tlvs": [(tag, value.hex()) for tag, value in tlvs],
            }
        )

    def send_raw_mo(
        self,
        source: str,
        dest: str,
        octets: bytes,
        *,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: tuple[tuple[int, bytes], ...] = (),
    ) -> None:
        """A `deliver_sm` MO of exactly these octets (a UDH, odd codings, broken data)."""
        self.command(
            mo={
                "source": source,
                "dest": dest,
                "hex": octets.hex(),
                "data_coding": data_coding,
                "esm_class": esm_class,
                "tlvs": [(tag, value.hex()) for tag, value in tlvs],
            }
        )

    async def wait_for(
        self, found: Callable[[dict[str, Any]], bool], timeout: float = 15
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in list(self.events):
                    if found(event):
                        return event
                await asyncio.sleep(0.05)

    async def count(
        self, found: Callable[[dict[str, Any]], bool], n: int, timeout: float = 15
    ) -> None:
        async with asyncio.timeout(timeout):
            while sum(1 for e in list(self.events) if found(e)) < n:
                await asyncio.sleep(0.05)

    def submits(self) -> list[Submit]:
        return [
            Submit(
                destination=s["destination"],
                source=s["source"],
                data_coding=s["data_coding"],
                esm_class=s["esm_class"],
                octets=bytes.fromhex(s["hex"]),
                registered_delivery=s["registered_delivery"],
                message_id=s.get("message_id"),
                status=s.get("status"),
            )
            for e in list(self.events)
            if (s := e.get("submit"))
        ]


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
