"""A real Kannel (Debian `kannel`, `kannel-extras`) for the SMS tests: bearerbox with a
`fake` SMSC, smsbox with one catch-all `sms-service` calling hotline's get-url and the
`sendsms` interface, and `fakesmsc` playing the subscriber's handset.

Each `KannelPeer` writes its own kannel.conf on free ports under a temporary directory
and starts the two boxes; `inject` runs one `fakesmsc -m 1` that sends an MO and reads
the MT lines bearerbox delivers to it (`Got message N: <from to type data>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import pytest

from sms.dialects.kannel import get_url
from tests.conftest import free_port

__all__ = ["FAKESMSC", "KannelPeer", "Mt", "joined", "kannel_binaries"]

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) ?(.*)>$")


def kannel_binaries() -> tuple[str, str]:
    bearerbox, smsbox = shutil.which("bearerbox"), shutil.which("smsbox")
    for path in ("/usr/sbin/bearerbox", "/usr/sbin/smsbox"):
        if Path(path).exists():
            bearerbox = bearerbox or (path if path.endswith("bearerbox") else None)
            smsbox = smsbox or (path if path.endswith("smsbox") else None)
    if bearerbox is None or smsbox is None or not FAKESMSC.exists():
        pytest.fail(
            "Kannel is not installed (make test installs kannel and kannel-extras on Debian)"
        )
    return bearerbox, smsbox


def _wait_port(port: int, deadline: float) -> None:
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {port}")
        time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class Mt:
    """One mobile-terminated message as fakesmsc printed it: `text` (as is), `ucs-2`
    (URL-encoded UTF-16BE) or `udh` (one part of a concatenated message: URL-encoded
    header and payload; the payload's coding is not printed)."""

    sender: str
    receiver: str
    kind: str
    data: bytes
    udh: bytes = b""

    @property
    def text(self) -> str:
        if self.kind == "ucs-2":
            return self.data.decode("utf-16-be")
        return self.data.decode("latin-1")

    @classmethod
    def parse(cls, line: str) -> Mt | None:
        match = _GOT.search(line)
        if match is None:
            return None
        sender, receiver, kind, rest = match.groups()
        if kind == "udh":
            udh, _, data = rest.partition(" data ")
            return cls(sender, receiver, kind, _unplus(data), _unplus(udh))
        if kind == "ucs-2":
            return cls(sender, receiver, kind, _unplus(rest))
        return cls(sender, receiver, kind, rest.encode("latin-1"))


def _unplus(data: str) -> bytes:
    """fakesmsc URL-encodes with `+` for a space byte."""
    return unquote_to_bytes(data.replace("+", "%20"))


def joined(parts: list[Mt], encoding: str) -> str:
    """The text of a concatenated message's parts (UDH IE 0x00: ref, total, seq)."""
    ordered = sorted(parts, key=lambda mt: mt.udh[-1])
    payload = b"".join(mt.data for mt in ordered)
    return payload.decode("utf-16-be" if encoding == "ucs2" else "latin-1")


class KannelPeer:
    """bearerbox + smsbox on free ports, calling hotline at `hotline_port`."""

    USER = "hotline"
    PASSWORD = "kannel-test-secret"

    def __init__(
        self,
        workdir: Path,
        hotline_port: int,
        *,
        max_messages: int = 3,
        smpp_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.hotline_port = hotline_port
        self.admin_port = free_port()
        self.box_port = free_port()
        self.smsc_port = free_port()
        self.sendsms_port = free_port()
        self.max_messages = max_messages
        self.smpp_port = smpp_port  # also an `smpp` SMSC (smsc-id smpp) bound to this port
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def config(self) -> str:
        url = get_url(f"http://127.0.0.1:{self.hotline_port}")
        logs = self.workdir
        return f"""
group = core
admin-port = {self.admin_port}
admin-password = admin-secret
smsbox-port = {self.box_port}
box-allow-ip = "127.0.0.1"
log-file = "{logs}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = {self.smsc_port}
connect-allow-ip = "127.0.0.1"

{self._smpp_group()}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
log-file = "{logs}/smsbox.log"
log-level = 1
mo-recode = true

group = sendsms-user
username = {self.USER}
password = {self.PASSWORD}
max-messages = {self.max_messages}
concatenation = true

group = sms-service
keyword = default
catch-all = true
get-url = "{url}"
accept-x-kannel-headers = true
max-messages = {self.max_messages}
concatenation = true
omit-empty = true
"""

    def _smpp_group(self) -> str:
        """Kannel's SMPP client bound to a test SMSC (`tests/sms/smsc.py`): what an
        operator's Kannel does, delivery receipts (one per part) included."""
        if self.smpp_port is None:
            return ""
        return f"""
group = smsc
smsc = smpp
smsc-id = smpp
host = 127.0.0.1
port = {self.smpp_port}
transceiver-mode = true
smsc-username = kannel
smsc-password = kpw
system-type = ""
source-addr-ton = 0
source-addr-npi = 1
dest-addr-ton = 0
dest-addr-npi = 1
reconnect-delay = 1
"""

    def start(self) -> None:
        bearerbox, smsbox = kannel_binaries()
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config(), "utf-8")
        deadline = time.monotonic() + 20
        for binary, port in ((bearerbox, self.box_port), (smsbox, self.sendsms_port)):
            self.procs.append(
                subprocess.Popen(
                    [binary, str(conf)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            _wait_port(port, deadline)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()

    async def inject(
        self, sender: str, receiver: str, text: str, *, expect: int = 1, timeout: float = 15
    ) -> list[Mt]:
        """Send one MO as a handset would (`text`, or `ucs2` when not ASCII) and collect
        the MTs to `sender` until `expect` arrived (or `timeout`)."""
        if text.isascii():
            line = f"{sender} {receiver} text {text.replace(' ', '+')}"
        else:
            line = f"{sender} {receiver} ucs2 {quote(text.encode('utf-16-be'), safe='')}"
        return await self.collect(sender, expect=expect, timeout=timeout, send=line)

    async def collect(
        self,
        sender: str,
        *,
        expect: int,
        timeout: float = 15,
        send: str | None = None,
        into: list[Mt] | None = None,
    ) -> list[Mt]:
        """Connect a fakesmsc (sending `send` once, if given) and read MTs to `sender`
        (into `into` as they come, when given: the caller may cancel)."""
        args = ["-H", "127.0.0.1", "-r", str(self.smsc_port), "-i", "0.1"]
        if send is not None:
            args += ["-m", "1", send]
        else:
            args += ["-m", "0", f"{sender} 0 text nop"]
        proc = await asyncio.create_subprocess_exec(
            str(FAKESMSC),
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert proc.stderr is not None
        found: list[Mt] = into if into is not None else []
        try:
            async with asyncio.timeout(timeout):
                while len(found) < expect:
                    line = (await proc.stderr.readline()).decode("latin-1").rstrip()
                    if not line:
                        break
                    mt = Mt.parse(line)
                    if mt is not None and mt.receiver == sender.lstrip("+"):
                        found.append(mt)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        return found
