"""A phone that talks to hotline exactly like a USSD gateway does, over HTTP.

`UssdPhone` POSTs the Africa's Talking form to `/ussd/africastalking`: a fresh
`sessionId` per dial, `text` the `*`-joined inputs of the session so far, and reads
`CON …` / `END …`. The same class drives `hotline simulate`, the dialogue runner and
(in JavaScript form) the web simulator, so all three see what a handset would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import aiohttp

__all__ = ["USSD_PATH", "PhoneError", "Screen", "UssdPhone"]

USSD_PATH = "/ussd/africastalking"
_TIMEOUT = aiohttp.ClientTimeout(total=15)


class PhoneError(RuntimeError):
    """The service answered something a gateway would not accept (or did not answer)."""


@dataclass(frozen=True, slots=True)
class Screen:
    """One answer as the handset shows it."""

    text: str
    ends: bool
    label: str = ""  # the hop-metadata step label, when the service sends one

    def __str__(self) -> str:
        return ("END " if self.ends else "CON ") + self.text


@dataclass(slots=True)
class UssdPhone:
    """One subscriber's handset; `dial` starts a session, `press` continues it."""

    http: aiohttp.ClientSession
    base_url: str
    msisdn: str
    network_code: str = "46000"
    service_code: str = "*100#"
    session_id: str = ""
    inputs: list[str] = field(default_factory=list)
    ended: bool = True

    async def dial(self, service_code: str | None = None) -> Screen:
        self.service_code = service_code or self.service_code
        self.session_id = "ATUid_" + secrets.token_hex(16)
        self.inputs = []
        return await self._send()

    async def press(self, keys: str) -> Screen:
        if self.ended:
            raise PhoneError("no session: the last screen ended it (dial first)")
        self.inputs.append(keys)
        return await self._send()

    async def _send(self) -> Screen:
        form = {
            "sessionId": self.session_id,
            "serviceCode": self.service_code,
            "phoneNumber": self.msisdn,
            "networkCode": self.network_code,
            "text": "*".join(self.inputs),
        }
        url = self.base_url.rstrip("/") + USSD_PATH
        try:
            async with self.http.post(url, data=form, timeout=_TIMEOUT) as response:
                body = await response.text()
                label = response.headers.get("at-ussd-hop-metadata", "")
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PhoneError(f"POST {url}: {exc or type(exc).__name__}") from exc
        if status != 200:
            raise PhoneError(f"POST {url}: HTTP {status}: {body.strip()[:200]}")
        if body.startswith("CON "):
            self.ended = False
            return Screen(body[4:], ends=False, label=label)
        if body.startswith("END "):
            self.ended = True
            return Screen(body[4:], ends=True, label=label)
        raise PhoneError(f"POST {url}: answer starts with neither CON nor END: {body[:60]!r}")
