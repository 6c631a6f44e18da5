"""A real `osmo-hlr` (Debian `osmo-hlr`) for the EUSE tests, and a GSUP client playing the
MSC that talks to it.

osmo-hlr's GSUP (4222), VTY (4258) and CTRL (4259) ports are fixed, and NATS may hold
127.0.0.1:4222, so each HLR gets a loopback address of its own (127.x.y.z, all three
ports free there). The config is generated: `euse hotline`, `ussd route prefix *100#
external hotline`, `*100*` for direct dials (`*100*1#`: a prefix, not a pattern), and
`*101#`, `*102#`. Subscribers are provisioned through the VTY.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ussd import gsup_wire as wire

GSUP_PORT, VTY_PORT, CTRL_PORT = 4222, 4258, 4259

CONFIG = """\
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging level set-all notice
line vty
 bind {address}
ctrl
 bind {address}
hlr
 gsup
  bind ip {address}
 euse {euse}
 ussd route prefix *100# external {euse}
 ussd route prefix *100* external {euse}
 ussd route prefix *101# external {euse}
 ussd route prefix *102# external {euse}
"""


def osmo_hlr_binary() -> str | None:
    return shutil.which("osmo-hlr")


def free_loopback() -> str:
    """A 127.x.y.z address where the HLR's three fixed ports are free."""
    for _ in range(200):
        address = (
            f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"
        )
        try:
            for port in (GSUP_PORT, VTY_PORT, CTRL_PORT):
                with socket.socket() as probe:
                    probe.bind((address, port))
        except OSError:
            continue
        return address
    raise RuntimeError("no free loopback address for osmo-hlr")


@dataclass
class OsmoHlr:
    """One osmo-hlr process on its own loopback address; stop() kills it (a real stop:
    the EUSE's TCP connection dies), start() again keeps the database."""

    workdir: Path
    euse: str = "hotline"
    address: str = field(default_factory=free_loopback)
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "osmo-hlr.cfg"

    @property
    def log(self) -> Path:
        return self.workdir / "osmo-hlr.log"

    async def start(self) -> None:
        assert self.process is None
        binary = osmo_hlr_binary()
        assert binary is not None, "osmo-hlr is not installed (make system-deps)"
        self.config.write_text(CONFIG.format(address=self.address, euse=self.euse))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "-c", str(self.config), "-l", str(self.workdir / "hlr.db")],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with asyncio.timeout(15):
            while True:
                assert self.process.poll() is None, self.log.read_text(errors="replace")
                try:
                    _, writer = await asyncio.open_connection(self.address, VTY_PORT)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break

    async def stop(self) -> None:
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None

    async def vty(self, *commands: str) -> str:
        """Run VTY commands (after `enable`); the transcript."""
        reader, writer = await asyncio.open_connection(self.address, VTY_PORT)
        out = b""

        async def prompt() -> None:
            nonlocal out
            async with asyncio.timeout(5):
                while not out.rstrip().endswith((b">", b"#")):
                    chunk = await reader.read(4096)
                    if not chunk:
                        return
                    out += chunk

        try:
            await prompt()
            for command in ("enable", *commands):
                out = b""
                writer.write(command.encode() + b"\r\n")
                await writer.drain()
                await prompt()
        finally:
            writer.close()
        return out.decode(errors="replace")

    async def provision(self, imsi: str, msisdn: str | None) -> None:
        commands = [f"subscriber imsi {imsi} create"]
        if msisdn is not None:
            commands.append(f"subscriber imsi {imsi} update msisdn {msisdn}")
        await self.vty(*commands)


class Msc:
    """A GSUP client playing osmo-msc: sends PROC_SS_REQUESTs and reads the answers the
    HLR forwards from the EUSE."""

    def __init__(self, address: str, name: str = "MSC-test-00-00-00-00-00-01") -> None:
        self.address = address
        self.name = name
        self.inbox: asyncio.Queue[wire.GsupMessage] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def connect(self) -> None:
        reader, self._writer = await asyncio.open_connection(self.address, GSUP_PORT)
        self._reader_task = asyncio.ensure_future(self._read(reader))
        async with asyncio.timeout(10):
            await self._ready.wait()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        assert self._writer is not None
        while True:
            try:
                header = await reader.readexactly(3)
                size, proto = struct.unpack(">HB", header)
                payload = await reader.readexactly(size)
            except (asyncio.IncompleteReadError, OSError):
                return
            if proto == wire.IPA_CCM and payload[0] == wire.CCM_ID_GET:
                self._writer.write(wire.frame(wire.IPA_CCM, wire.id_resp(payload[1:], self.name)))
                self._writer.write(wire.frame(wire.IPA_CCM, bytes((wire.CCM_ID_ACK,))))
            elif proto == wire.IPA_CCM and payload[0] == wire.CCM_ID_ACK:
                self._ready.set()
            elif proto == wire.IPA_CCM and payload[0] == wire.CCM_PING:
                self._writer.write(wire.frame(wire.IPA_CCM, bytes((wire.CCM_PONG,))))
            elif proto == wire.IPA_OSMO and payload[:1] == bytes((wire.OSMO_GSUP,)):
                await self.inbox.put(wire.GsupMessage.decode(payload[1:]))

    def send(self, message: wire.GsupMessage) -> None:
        assert self._writer is not None
        self._writer.write(wire.frame(wire.IPA_OSMO, bytes((wire.OSMO_GSUP,)) + message.encode()))

    async def receive(self, timeout: float = 10) -> wire.GsupMessage:
        async with asyncio.timeout(timeout):
            return await self.inbox.get()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
