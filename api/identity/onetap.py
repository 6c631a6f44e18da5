"""Operator one-tap login (一键登录): the SDK's token → the number.

    POST {url}   {"token": "…"}   signed like the balance provider (BQ1-HMAC-SHA256,
                                  `hotline.balance.signing`, with app_id / secret)
         → {"Code": "OK", "GetMobileResultDTO": {"Mobile": "…"}}   (Aliyun GetMobile's shape)

Talking to a real aggregator means its own request signature; the answer's shape is
kept so the adapter is one function.
"""

from __future__ import annotations

import time
import uuid

import aiohttp
import orjson
from yarl import URL

from api.identity.base import IdentityRefused, IdentityUnavailable
from hotline.balance.signing import auth_headers
from hotline.base.config import IdentitySettings

__all__ = ["OneTapExchange"]


class OneTapExchange:
    def __init__(self, settings: IdentitySettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session

    async def phone(self, code: str) -> str:
        s = self._settings
        body = orjson.dumps({"token": code})
        headers = {
            "Content-Type": "application/json",
            **auth_headers(
                method="POST",
                path=URL(s.url).raw_path,
                query="",
                key_id=s.app_id,
                secret=s.secret.get_secret_value(),
                body=body,
                timestamp_ms=int(time.time() * 1000),
                nonce=uuid.uuid4().hex,
            ),
        }
        timeout = aiohttp.ClientTimeout(total=s.timeout)
        try:
            async with self._session.post(s.url, data=body, headers=headers, timeout=timeout) as r:
                if r.status != 200:
                    raise IdentityUnavailable(f"HTTP {r.status}")
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise IdentityUnavailable(type(exc).__name__) from exc
        if not isinstance(data, dict):
            raise IdentityUnavailable("not a JSON object")
        if data.get("Code") != "OK":
            raise IdentityRefused(str(data.get("Code"))[:40])
        result = data.get("GetMobileResultDTO")
        mobile = result.get("Mobile") if isinstance(result, dict) else None
        if not isinstance(mobile, str) or not mobile:
            raise IdentityUnavailable("no Mobile in the answer")
        return mobile
