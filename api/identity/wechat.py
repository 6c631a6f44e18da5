"""WeChat mini-program `getPhoneNumber`: code → number.

    GET  {url}/cgi-bin/token?grant_type=client_credential&appid=…&secret=…
         → {"access_token": "…", "expires_in": 7200}
    POST {url}/wxa/business/getuserphonenumber?access_token=…   {"code": "…"}
         → {"errcode": 0, "phone_info": {"phoneNumber": "…", "purePhoneNumber": "…",
            "countryCode": "86"}}

The access token is kept until a minute before it expires and fetched again once when
WeChat says it is invalid (errcode 40001, 42001). Any other errcode refuses the code.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from api.identity.base import IdentityRefused, IdentityUnavailable
from hotline.base.config import IdentitySettings

__all__ = ["WeChatExchange"]

_STALE_TOKEN = frozenset({40001, 42001})


class WeChatExchange:
    def __init__(self, settings: IdentitySettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._token: tuple[str, float] | None = None  # (token, valid until)

    async def _get_json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
        try:
            async with self._session.request(method, url, timeout=timeout, **kwargs) as resp:
                if resp.status != 200:
                    raise IdentityUnavailable(f"HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise IdentityUnavailable(type(exc).__name__) from exc
        if not isinstance(data, dict):
            raise IdentityUnavailable("not a JSON object")
        return data

    async def _access_token(self, fresh: bool = False) -> str:
        now = time.monotonic()
        if self._token is not None and not fresh and self._token[1] > now:
            return self._token[0]
        s = self._settings
        data = await self._get_json(
            "GET",
            f"{s.url.rstrip('/')}/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": s.app_id,
                "secret": s.secret.get_secret_value(),
            },
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise IdentityUnavailable(f"no access token (errcode {data.get('errcode')})")
        lifetime = data.get("expires_in")
        ttl = float(lifetime) if isinstance(lifetime, int) else 7200.0
        self._token = (token, now + max(ttl - 60, 1))
        return token

    async def phone(self, code: str) -> str:
        for attempt in (0, 1):
            token = await self._access_token(fresh=attempt == 1)
            data = await self._get_json(
                "POST",
                f"{self._settings.url.rstrip('/')}/wxa/business/getuserphonenumber",
                params={"access_token": token},
                json={"code": code},
            )
            errcode = data.get("errcode", 0)
            if errcode in _STALE_TOKEN and attempt == 0:
                continue
            if errcode != 0:
                raise IdentityRefused(f"errcode {errcode}")
            info = data.get("phone_info")
            number = info.get("purePhoneNumber") if isinstance(info, dict) else None
            country = info.get("countryCode", "86") if isinstance(info, dict) else "86"
            if not isinstance(number, str) or not number:
                raise IdentityUnavailable("no phone_info in the answer")
            return f"+{country}{number}"
        raise IdentityUnavailable("access token refused twice")
