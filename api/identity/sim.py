"""Both identity providers, played locally so sign-in by exchange runs offline.

    POST /_sim/wechat/code   {"phone": "+8613800138000"} → {"code": "…"}  (what the
                             mini-program's getPhoneNumber button would hand the app)
    POST /_sim/onetap/token  {"phone": …} → {"token": "…"}                (the SDK's token)
    GET  /cgi-bin/token?grant_type=client_credential&appid=…&secret=…
    POST /wxa/business/getuserphonenumber?access_token=…   {"code": …}
    POST /onetap/getmobile   {"token": …}   (BQ1-HMAC-SHA256 signed)

Codes and tokens are single-use and live five minutes, like WeChat's. Run it with
`hotline api identity-sim --port 8098`; credentials are the `app_id`/`secret` it is
started with (default `sim-app` / `sim-secret`).
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from hotline.balance.signing import parse_authorization, string_to_sign, verify_signature
from hotline.base.privacy import canonical_msisdn

__all__ = ["ONETAP_PATH", "make_app"]

ONETAP_PATH = "/onetap/getmobile"
LIFETIME = 300.0
SKEW_MS = 300_000


class _Issued:
    """Single-use secrets → the number they stand for, expiring."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, float]] = {}

    def issue(self, phone: str) -> str:
        value = secrets.token_urlsafe(24)
        self._items[value] = (phone, time.monotonic() + LIFETIME)
        return value

    def take(self, value: str) -> str | None:
        found = self._items.pop(value, None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


def make_app(app_id: str = "sim-app", secret: str = "sim-secret") -> web.Application:
    codes, tokens, access = _Issued(), _Issued(), _Issued()
    nonces: set[str] = set()

    async def _phone(request: web.Request) -> str:
        data = await request.json()
        return canonical_msisdn(str(data.get("phone", "")))

    async def new_code(request: web.Request) -> web.Response:
        return web.json_response({"code": codes.issue(await _phone(request))})

    async def new_token(request: web.Request) -> web.Response:
        return web.json_response({"token": tokens.issue(await _phone(request))})

    async def cgi_token(request: web.Request) -> web.Response:
        q = request.query
        if q.get("appid") != app_id or q.get("secret") != secret:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        return web.json_response({"access_token": access.issue(app_id), "expires_in": 7200})

    async def get_phone(request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token not in access._items:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        data = await request.json()
        phone = codes.take(str(data.get("code", "")))
        if phone is None:
            return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
        pure = phone[2:] if phone.startswith("86") and len(phone) == 13 else phone
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": pure,
                    "purePhoneNumber": pure,
                    "countryCode": "86",
                    "watermark": {"timestamp": int(time.time()), "appid": app_id},
                },
            }
        )

    async def get_mobile(request: web.Request) -> web.Response:
        body = await request.read()
        parsed = parse_authorization(request.headers.get("Authorization"))
        ts = request.headers.get("X-BQ-Timestamp", "")
        nonce = request.headers.get("X-BQ-Nonce", "")
        if (
            parsed is None
            or parsed[0] != app_id
            or not ts.isdigit()
            or abs(int(ts) - time.time() * 1000) > SKEW_MS
            or not nonce
            or nonce in nonces
        ):
            return web.json_response({"Code": "isv.InvalidSignature"}, status=403)
        message = string_to_sign(
            "POST", request.raw_path.split("?")[0], "", app_id, ts, nonce, body
        )
        if not verify_signature(secret, message, parsed[1]):
            return web.json_response({"Code": "isv.InvalidSignature"}, status=403)
        nonces.add(nonce)
        data = await request.json()
        phone = tokens.take(str(data.get("token", "")))
        if phone is None:
            return web.json_response({"Code": "isv.MOBILE_NUMBER_ILLEGAL"})
        return web.json_response({"Code": "OK", "GetMobileResultDTO": {"Mobile": phone}})

    app = web.Application()
    app.router.add_post("/_sim/wechat/code", new_code)
    app.router.add_post("/_sim/onetap/token", new_token)
    app.router.add_get("/cgi-bin/token", cgi_token)
    app.router.add_post("/wxa/business/getuserphonenumber", get_phone)
    app.router.add_post(ONETAP_PATH, get_mobile)
    return app
