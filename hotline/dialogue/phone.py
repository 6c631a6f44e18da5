"""A phone that talks to hotline exactly like a USSD gateway does, over HTTP.

`UssdPhone` POSTs the Africa's Talking form to `/ussd/africastalking`: a fresh
`sessionId` per dial, `text` the `*`-joined inputs of the session so far, and reads
`CON …` / `END …`. The same class drives `hotline simulate`, the dialogue runner and
(in JavaScript form) the web simulator, so all three see what a handset would.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

__all__ = ["USSD_PATH", "Answer", "PhoneError", "Screen", "UssdPhone", "exchange"]

USSD_PATH = "/ussd/africastalking"
_TIMEOUT = aiohttp.ClientTimeout(total=15)


class PhoneError(RuntimeError):
    """The service answered something a gateway would not accept (or did not answer)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as a gateway gets it; `text` is decoded whatever the bytes."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def status_line(self) -> str:
        return f"HTTP {self.status} {self.reason}".rstrip()

    @property
    def first_line(self) -> str:
        text = self.text.strip()
        return text.splitlines()[0][:200] if text else "(empty body)"


async def exchange(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    timeout: aiohttp.ClientTimeout,
    data: Mapping[str, str] | None = None,
) -> Answer:
    """One request; anything short of an HTTP answer is a `PhoneError` in plain words."""
    try:
        async with http.request(method, url, data=data, timeout=timeout) as response:
            body = await response.read()
            return Answer(response.status, response.reason or "", response.headers, body)
    except aiohttp.ClientConnectorError as exc:
        err = exc.os_error
        code = err.errno or 0
        why = os.strerror(code) if code > 0 else err.strerror or str(err)
        raise PhoneError(
            f"{method} {url}: cannot connect ({why}); is hotline running there?"
        ) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise PhoneError(
            f"{method} {url}: the server closed the connection without answering"
        ) from exc
    except TimeoutError as exc:
        raise PhoneError(f"{method} {url}: no answer within {timeout.total:g} s") from exc
    except aiohttp.ClientError as exc:
        raise PhoneError(f"{method} {url}: {exc or type(exc).__name__}") from exc


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
        # Whatever goes wrong, the session is over: a gateway ends it on any answer it
        # cannot show (the handset says "Connection problem or invalid MMI code").
        self.ended = True
        answer = await exchange(self.http, "POST", url, _TIMEOUT, data=form)
        body = answer.text
        label = answer.headers.get("at-ussd-hop-metadata", "")
        if answer.status != 200:
            raise PhoneError(f"POST {url}: {answer.status_line}: {answer.first_line}")
        if body.startswith("CON "):
            self.ended = False
            return Screen(body[4:], ends=False, label=label)
        if body.startswith("END "):
            return Screen(body[4:], ends=True, label=label)
        shown = repr(body[:60]) if body else "an empty body"
        raise PhoneError(f"POST {url}: the answer starts with neither CON nor END: {shown}")
