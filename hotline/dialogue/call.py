"""A phone that calls hotline the way Twilio does and follows the TwiML it gets back.

`IvrPhone.dial(number)` POSTs the call-start webhook to `/ivr/twilio/voice`; each answer
is TwiML: `<Play>` clips are fetched like the platform would (each must be a WAV),
`<Gather action=…>` means the call waits for keys, which `press` POSTs as `Digits` to
that action URL; `<Hangup>` or `<Dial>` ends our side of the call.

What the caller hears is matched through `speech_text` (clip URL → sentence), which the
voice channel publishes in-process under `hotline.web.keys.SPEECH_TEXT`; clip URLs are
sealed, so over `--url` only the structure (clips, gather, end) can be checked.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp

from hotline.dialogue.phone import PhoneError, Screen, exchange

__all__ = ["IVR_PATH", "IvrPhone"]


IVR_PATH = "/ivr/twilio/voice"
_TIMEOUT = aiohttp.ClientTimeout(total=30)
_WAV_HEADER = 44


def _join(parts: list[str]) -> str:
    """Clips as one text: a sentence is cut into clips at its values, so Chinese
    pieces join without a space (`您的话费余额为` + `十二元五角` + `。`); others get one."""
    text = ""
    for part in parts:
        if text and part and not (ord(text[-1]) > 127 and ord(part[0]) > 127):
            text += " "
        text += part
    return text


@dataclass(slots=True)
class IvrPhone:
    """One caller; `dial` places a call, `press` answers the current `<Gather>`."""

    http: aiohttp.ClientSession
    base_url: str
    msisdn: str
    speech_text: Callable[[str], str | None] | None = None
    call_sid: str = ""
    to: str = ""
    action: str | None = None
    ended: bool = True
    clips: list[str] = field(default_factory=list)

    async def dial(self, number: str | None = None) -> Screen:
        self.call_sid = "CA" + secrets.token_hex(16)
        self.to = number or "+8610086"
        url = self.base_url.rstrip("/") + IVR_PATH
        return await self._post(url, {"CallStatus": "ringing"})

    async def press(self, keys: str) -> Screen:
        if self.ended or self.action is None:
            raise PhoneError("no call: the last answer hung up (dial first)")
        return await self._post(self.action, {"CallStatus": "in-progress", "Digits": keys})

    async def _post(self, url: str, extra: dict[str, str]) -> Screen:
        form = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.msisdn,
            "To": self.to,
            "Direction": "inbound",
            **extra,
        }
        answer = await exchange(self.http, "POST", url, _TIMEOUT, data=form)
        if answer.status != 200:
            raise PhoneError(f"POST {url}: {answer.status_line}: {answer.first_line}")
        body = answer.text
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise PhoneError(f"POST {url}: the answer is not XML ({exc})") from exc
        if root.tag != "Response":
            raise PhoneError(f"POST {url}: the answer is not TwiML (<{root.tag}>)")
        return await self._follow(root, url)

    async def _follow(self, root: ET.Element, url: str) -> Screen:
        self.action, self.clips = None, []
        ends = True
        for verb in root:
            if verb.tag == "Gather":
                self.action = urljoin(url, verb.get("action") or url)
                ends = False
                self.clips += [urljoin(url, (p.text or "").strip()) for p in verb.iter("Play")]
            elif verb.tag == "Play":
                self.clips.append(urljoin(url, (verb.text or "").strip()))
        self.ended = ends
        said = [await self._clip(clip) for clip in self.clips]
        return Screen(_join(said), ends=ends, label=f"{len(self.clips)} clip(s)")

    async def _clip(self, url: str) -> str:
        """Fetch one clip as the platform would; its sentence if the server tells it."""
        answer = await exchange(self.http, "GET", url, _TIMEOUT)
        kind = answer.headers.get("Content-Type", "")
        if answer.status != 200 or not kind.startswith("audio/") or len(answer.body) <= _WAV_HEADER:
            raise PhoneError(
                f"GET {url}: {answer.status_line} {kind}, {len(answer.body)} bytes: not a clip"
            )
        text = self.speech_text(url) if self.speech_text is not None else None
        return text if text is not None else "♪"
